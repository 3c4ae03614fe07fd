import subprocess
import sys


def test_importing_ml_does_not_import_django():
    code = (
        "import sys, ml, ml.config, ml.metrics, ml.scoring, ml.artifact, ml.datasets.ccp, ml.datasets.clothing\n"
        "assert 'django' not in sys.modules, 'ml imported django'\n"
        "assert 'tensorflow' not in sys.modules, 'import ml must stay light'\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_training_and_model_modules_do_not_import_django():
    code = "import sys, ml.training, ml.model, ml.layers, ml.losses, ml.evaluation\nprint('django' in sys.modules)\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
