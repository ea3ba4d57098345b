#!/usr/bin/env bash
# Best effort: the Debian packages of the translation app's default data. Apertium eng-spa (the
# teacher of apps/translation/corpus.py) and the English text it translates (fortune files,
# WordNet's examples, FOLDOC's definitions); FreeDict eng-deu's real sentence pairs. Needs root
# and apt-get; prints one warning line when it could not install them and exits 0 (training
# then says how to install Apertium, and the demo falls back to generated pairs).
set -uo pipefail
packages=(apertium apertium-eng-spa fortunes fortunes-min wordnet-base dict-foldoc
          dict-freedict-eng-deu)
missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
[ "${#missing[@]}" = 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
    echo "warning: not root with apt-get: install ${missing[*]} by hand" \
         "(the translation corpus tests fail without apertium-eng-spa)"
    exit 0
fi
(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${missing[@]}") >/dev/null 2>&1 \
    || echo "warning: could not install ${missing[*]}: test_translation_corpus.py will fail"
exit 0
