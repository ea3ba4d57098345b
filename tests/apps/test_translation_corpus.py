"""The English→Spanish corpus builder: cleaning, source readers, the Apertium wrapper, the TSV."""

from __future__ import annotations

import gzip
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from apps.translation import corpus
from rnnkit.data.pairs import read_tsv_pairs
from rnnkit.errors import UserError

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------- cleaning
@pytest.mark.parametrize("text, expected", [
    ("The food was great.", ["The food was great."]),
    ("Yay. Another good phone interview.", ["Another good phone interview."]),  # 1 word dropped
    ("Mr. Smith met J. R. R. Tolkien in London. They talked for hours!",
     ["Mr. Smith met J. R. R. Tolkien in London.", "They talked for hours!"]),
    ('"Is it male or female?" he asked. She smiled at him.',
     ['"Is it male or female?" he asked.', "She smiled at him."]),
    ("the oceans are teeming with life", ["The oceans are teeming with life"]),
    ("iPhone cases are cheap now", ["iPhone cases are cheap now"]),
    ("yesterday i said i'm fine on i-95", ["Yesterday I said I'm fine on i-95"]),
    ("We stayed late &amp; the band played on", ["We stayed late & the band played on"]),
    ("The ''Conan'' remake is `fine'", ['The "Conan" remake is \'fine\'']),
    ("  Too   many\n spaces\there ", ["Too many spaces here"]),
    ("Cafe\u0301 owners love it", ["Caf\u00e9 owners love it"]),  # NFC
])
def test_clean_sentences_keeps_and_normalises(text, expected):
    assert corpus.clean_sentences(text) == expected


@pytest.mark.parametrize("text", [
    "Too short.",
    " ".join(["word"] * 26),
    "Read more at http://example.com today",
    "Read more at www.example.org today",
    "Mail me at someone@example.com please",
    "Visit example.com for the details",
    "I love this so much :)",
    "Thanks @bob for the great night",
    "So happy tonight #blessed #friends",
    "This is <b>bold</b> text",
    "The *really* important part",
    "I love it \U0001F60D so much",
    "Это очень хороший фильм",
    "I LOVE THIS PHONE SO MUCH",
    "Control\x08 characters are not text",
    "A zero\u200b width space inside",
    "12 34 56 78",
])
def test_clean_sentences_rejects(text):
    assert corpus.clean_sentences(text) == []


def test_split_sentences_does_not_cut_after_abbreviations_or_lower_case():
    assert corpus.split_sentences("It costs approx. 5 dollars, e.g. Not much. ok then") == [
        "It costs approx. 5 dollars, e.g. Not much. ok then"]
    assert corpus.split_sentences("It costs approx. 5 dollars. Not much.") == [
        "It costs approx. 5 dollars.", "Not much."]


# ---------------------------------------------------------------------------- sources
def test_fortune_entries_drop_attributions(tmp_path):
    path = tmp_path / "wisdom"
    path.write_text("A bit of talcum\nIs always walcum\n\t\t-- Ogden Nash\n%\n"
                    "Be kind to animals.\n%\nLast one without a separator.\n")
    assert list(corpus.fortune_entries(path)) == [
        "A bit of talcum\nIs always walcum", "Be kind to animals.",
        "Last one without a separator."]


def test_fortune_texts_skip_art_and_index_files(tmp_path):
    (tmp_path / "art").write_text("  /\\_/\\\n%\n")
    (tmp_path / "food").write_text("Eat your vegetables.\n%\n")
    (tmp_path / "food.dat").write_bytes(b"\x00\x02")
    (tmp_path / "food.u8").symlink_to(tmp_path / "food")
    assert list(corpus.fortune_texts(tmp_path)) == ["Eat your vegetables."]
    with pytest.raises(FileNotFoundError, match="apt-get install fortunes fortunes-min"):
        list(corpus.fortune_texts(tmp_path / "missing"))


def test_wordnet_texts_read_quoted_gloss_examples(tmp_path):
    (tmp_path / "data.noun").write_text(
        "  1 This software and database is provided \"as is\"\n"
        '00006269 03 n 01 life 0 002 @ 00004258 n 0000 | living things collectively; '
        '"the oceans are teeming with life"; "life on earth"  \n')
    assert list(corpus.wordnet_texts(tmp_path)) == ["the oceans are teeming with life",
                                                     "life on earth"]
    with pytest.raises(FileNotFoundError, match="apt-get install wordnet-base"):
        list(corpus.wordnet_texts(tmp_path / "missing"))


def test_foldoc_paragraphs_drop_headwords_citations_and_links(tmp_path):
    path = tmp_path / "foldoc.dict.dz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("00-database-info\n   This is the header text of the file.\n\n"
                     "actor\n\n   1. <programming> In {object-oriented} programming, an\n"
                     "   {object} which exists as a process.\n\n"
                     "   [\"Actor Does More\", Tello, 1988].\n\n   (1994-11-08)\n\n"
                     "luser\n\n   /loo'zr/ A user; especially one who is also a loser.\n")
    assert list(corpus.foldoc_paragraphs(path)) == [
        "In object-oriented programming, an object which exists as a process.",
        "A user; especially one who is also a loser."]
    with pytest.raises(FileNotFoundError, match="apt-get install dict-foldoc"):
        list(corpus.foldoc_paragraphs(tmp_path / "missing.dict.dz"))


def test_collect_sentences_deduplicates_across_sources(monkeypatch):
    def absent():
        raise FileNotFoundError("absent: apt-get install it")

    monkeypatch.setattr(corpus, "SOURCES", {
        "first": lambda: ["The cat sat down. The dog barked loudly."],
        "second": lambda: ["the cat sat down.", "A bird sang a song."],
        "absent": absent,
    })
    collected = corpus.collect_sentences(["first", "second", "absent"])
    assert collected.sentences == ["The cat sat down.", "The dog barked loudly.",
                                   "A bird sang a song."]
    assert collected.sources == ["first", "first", "second"]
    assert collected.counts == {"first": 2, "second": 1}
    assert collected.missing == {"absent": "absent: apt-get install it"}
    with pytest.raises(UserError, match="Unknown corpus source"):
        corpus.collect_sentences(["nope"])


# ---------------------------------------------------------------------------- marks
def test_mark_kinds_and_policies():
    assert corpus.mark_kind("El gato es negro.") == "clean"
    assert corpus.mark_kind("*Zorblatt es feliz.") == "name"
    assert corpus.mark_kind("El *windshield es *Zorblatt.") == "unknown"
    assert corpus.mark_kind("Dónde es la #canal?") == "failed"
    assert corpus.mark_kind("Él @swim aquí.") == "failed"
    assert corpus.resolve_marks("*Zorblatt es feliz.") == "Zorblatt es feliz."
    assert corpus.mark_kind("El Nintendo 3*DS a 5*ish.") == "unknown"
    assert corpus.resolve_marks("Tiene 13.2*Mbps.") == "Tiene 13.2Mbps."
    assert corpus.resolve_marks("Un * solo.", "copy") == "Un solo."
    assert corpus.resolve_marks("El *windshield es roto.") is None
    assert corpus.resolve_marks("El *windshield es roto.", "copy") == "El windshield es roto."
    assert corpus.resolve_marks("*Zorblatt es feliz.", "drop") is None
    assert corpus.resolve_marks("Dónde es la #canal?", "copy") is None
    common = corpus.lower_case_words(["Likeable people are likeable.", "Zorblatt's sad"])
    assert common == {"people", "are", "likeable", "sad"}
    assert corpus.mark_kind("*Likeable gracias.", common) == "unknown"
    assert corpus.mark_kind("*Zorblatt es feliz.", common) == "name"
    assert corpus.resolve_marks("*Likeable gracias.", "names", common) is None
    with pytest.raises(UserError, match="must be one of copy, names, drop"):
        corpus.resolve_marks("Hola.", "keep")


def test_lower_case_after_unknown_start():
    fix = corpus.lower_case_after_unknown_start
    assert fix("*Odysseus Ordenado su tripulación", "Odysseus ordered his crew") == (
        "*Odysseus ordenado su tripulación")
    assert fix("(*Majidi) Nos hace pensar", "(Majidi) makes us think") == "(*Majidi) nos hace pensar"
    assert fix("*Knockaround Guys es buena", "Knockaround Guys is good") == (
        "*Knockaround Guys es buena")
    assert fix("*RTP RTP es", "RTP RTP is") == "*RTP RTP es"
    assert fix("Vi *Knockaround Tipos", "I saw Knockaround Guys") == "Vi *Knockaround Tipos"


def test_tidy_spanish():
    assert corpus.tidy_spanish(" Dónde es  la estación ?") == "¿Dónde es la estación?"
    assert corpus.tidy_spanish("Lo sé. Es aquí ?") == "Lo sé. ¿Es aquí?"
    assert corpus.tidy_spanish('"Qué es ?"') == '"¿Qué es?"'
    assert corpus.tidy_spanish("¿Qué es?") == "¿Qué es?"
    assert corpus.tidy_spanish("Vaya !") == "¡Vaya!"
    assert corpus.tidy_spanish("Soy un HUMANO !!") == "¡Soy un HUMANO!!"
    assert corpus.tidy_spanish("Así que , bien.") == "Así que, bien."


# ---------------------------------------------------------------------------- apertium
# .ci/run installs apertium and apertium-eng-spa: without them these tests fail with the advice.
def test_apertium_translates_sentence_by_sentence():
    corpus.check_apertium()
    english = ["The house is very big.", "I have two black dogs.", "Where is the hospital?"]
    spanish = corpus.translate(english, batch_size=2)
    assert len(spanish) == 3
    for source, target in zip(english, spanish, strict=True):
        assert target and target != source
        assert corpus.mark_kind(target) == "clean"
    words = " ".join(spanish).lower().split()
    assert {"casa", "perros", "hospital?"} <= set(words)


def test_apertium_keeps_words_in_their_own_sentence():
    corpus.check_apertium()
    # One newline between these lets Apertium move "red" after "car" into the first line.
    spanish = corpus.translate(["I saw the red", "car is big"])
    assert len(spanish) == 2 and "rojo" in spanish[0] and "rojo" not in spanish[1]


def test_build_corpus_writes_a_tsv_that_read_tsv_pairs_reads(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "SOURCES", {
        "test": lambda: ["The house is very big. I have two black dogs.",
                         "Mr. Zorblatt is happy today.", "The windshield is broken again."],
    })
    out = tmp_path / "data" / "eng_spa.tsv"
    report = corpus.build_corpus(out, sources=["test"])
    pairs = read_tsv_pairs(out)
    assert [english for english, _ in pairs] == [
        "The house is very big.", "I have two black dogs.", "Mr. Zorblatt is happy today."]
    assert all(spanish and "*" not in spanish for _, spanish in pairs)
    assert "Zorblatt" in pairs[2][1]
    assert report.selected == 4 and report.written == {"test": 3}
    assert report.kinds["unknown"] == 1  # "windshield" is not in Apertium's English dictionary
    assert all(line.count("\t") == 2 and line.endswith("\ttest")
               for line in out.read_text(encoding="utf-8").splitlines())
    assert [path.name for path in out.parent.iterdir()] == ["eng_spa.tsv"]  # no temp file left
    report = corpus.build_corpus(out, sources=["test"], max_sentences=2)
    assert len(read_tsv_pairs(out)) == sum(report.written.values()) <= 2


# ---------------------------------------------------------------------------- errors
def test_write_pairs_is_atomic(tmp_path):
    out = tmp_path / "pairs.tsv"
    out.write_text("old\tviejo\n")

    def rows():
        yield "One two three.", "Uno dos tres.", "test"
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        corpus.write_pairs(out, rows())
    assert out.read_text() == "old\tviejo\n"
    assert [path.name for path in tmp_path.iterdir()] == ["pairs.tsv"]
    assert corpus.write_pairs(out, [("Tab\there.", "Tab  aquí.", "test")]) == 1
    assert read_tsv_pairs(out) == [("Tab here.", "Tab aquí.")]
    umask = os.umask(0o022)
    try:
        corpus.write_pairs(out, [("One two three.", "Uno dos tres.", "test")])
    finally:
        os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_missing_apertium_names_the_packages(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match=r"apertium is not installed.*"
                                        r"apt-get install apertium apertium-eng-spa"):
        corpus.check_apertium()
    with pytest.raises(UserError, match="apt-get install apertium apertium-eng-spa"):
        corpus.translate(["The house is big."])


def _fake_apertium(folder: Path, script: str, monkeypatch) -> None:
    fake = folder / "apertium"
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


def test_translate_halves_a_batch_whose_paragraphs_do_not_match(tmp_path, monkeypatch):
    # This stand-in answers `-l` with eng-spa and echoes its input, breaking the paragraph
    # at "SPLIT": the batch then has one output too many.
    _fake_apertium(tmp_path, 'if [ "$1" = -l ]; then echo eng-spa; exit; fi\n'
                             "sed 's/ SPLIT /\\n\\n/'", monkeypatch)
    english = ["One two three.", "Four SPLIT five.", "Six seven eight.", "Nine ten."]
    assert corpus.translate(english, batch_size=4) == [
        "One two three.", "Four five.", "Six seven eight.", "Nine ten."]
    _fake_apertium(tmp_path, 'if [ "$1" = -l ]; then echo eng-spa; exit; fi\n'
                             "echo 'no such mode' >&2; exit 3", monkeypatch)
    with pytest.raises(UserError, match=r"apertium eng-spa failed \(exit code 3\): no such mode"):
        corpus.translate(english)
    _fake_apertium(tmp_path, "echo broken >&2; exit 1", monkeypatch)
    with pytest.raises(UserError, match=r"apertium -l failed \(exit code 1\): broken"):
        corpus.check_apertium()


def test_missing_language_pair_names_the_package(tmp_path, monkeypatch):
    _fake_apertium(tmp_path, "echo '  spa-eng'", monkeypatch)
    with pytest.raises(UserError, match=r"apertium-eng-spa is not installed \(apertium offers: "
                                        r"spa-eng\): apt-get install apertium apertium-eng-spa"):
        corpus.check_apertium()


def test_cli_error_is_one_line_and_exit_code_2(tmp_path):
    environment = {**os.environ, "PATH": str(tmp_path), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "apps.translation.corpus", "build", "--out",
         str(tmp_path / "out.tsv")], capture_output=True, text=True, env=environment, cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.startswith("error: apertium is not installed")
    assert "apt-get install apertium apertium-eng-spa" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.tsv").exists()


def test_unwritable_output_is_reported_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match=r"Cannot write .*file/out.tsv"):
        corpus.build_corpus(blocker / "out.tsv", sources=["nope"])
