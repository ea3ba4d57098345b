import subprocess
import sys

import pytest

from rnnkit.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "rnnkit.cli", *args], capture_output=True,
                          text=True, timeout=300)


def test_bad_input_prints_one_line_and_exits_2(tmp_path):
    result = run_cli("export", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: Run directory not found: {tmp_path / 'nowhere'}"]
    (tmp_path / "empty").mkdir()
    result = run_cli("export", str(tmp_path / "empty"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'empty'} is not a training run directory (no run.json)"]


def test_unknown_demo_app_exits_2(capsys):
    assert main(["demo", "--apps", "nonexistent"]) == 2
    assert "--apps must be a comma-separated subset" in capsys.readouterr().err


def test_diagnose_rejects_bad_length(capsys):
    assert main(["diagnose", "--length", "1"]) == 2
    assert capsys.readouterr().err.strip() == "error: `length` must be >= 2. Received: length=1"


def test_argparse_errors_exit_2():
    with pytest.raises(SystemExit) as error:
        main(["no-such-command"])
    assert error.value.code == 2


def test_export_quantize_takes_per_format_entries_and_names_the_allowed_ones(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    # a per-format entry of a format that is exported passes the option check (the run
    # directory is what fails here) ...
    assert main(["captioning", "export", str(tmp_path / "run"), "--formats", "onnx,tflite",
                 "--quantize", "onnx:float16,tflite:int8"]) == 2
    assert "not a training run directory" in capsys.readouterr().err
    # ... one for a format that is not, or a quantization a format lacks, is rejected first
    for quantize in ("tflite:int8", "onnx:bfloat16"):
        assert main(["captioning", "export", str(tmp_path / "run"), "--formats", "onnx",
                     "--quantize", quantize]) == 2
        err = capsys.readouterr().err
        assert "--quantize must be a comma-separated subset" in err and "onnx:float16" in err
