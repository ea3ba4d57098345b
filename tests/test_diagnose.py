import json

from rnnkit.diagnose import run_diagnosis


def test_diagnosis_shows_gradient_decay_and_writes_plot(tmp_path):
    diagnoses = run_diagnosis(length=30, units=8, batch_size=16, train_steps=2, out_dir=tmp_path)
    assert [d.kind for d in diagnoses] == ["rnn", "lstm", "gru"]
    for diagnosis in diagnoses:
        assert len(diagnosis.norms_at_init) == 30
        # Gradients reaching the first step are far smaller than at the last one.
        assert diagnosis.first_to_last_ratio < 0.1
        assert 0.0 <= diagnosis.accuracy_after_training <= 1.0
    assert (tmp_path / "gradient_norms.png").stat().st_size > 5000
    saved = json.loads((tmp_path / "gradient_norms.json").read_text())
    assert saved[1]["kind"] == "lstm"
