import pytest

from ml.cli import main


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["train", "--help"],
        ["finetune", "--help"],
        ["evaluate", "--help"],
        ["pretrained", "--help"],
        ["parse-train", "--help"],
        ["attach-parser", "--help"],
        ["speed", "--help"],
    ],
)
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_pretrained_command(tmp_path, weights_cache, capsys):
    assert (
        main(
            [
                "pretrained",
                "--out",
                str(tmp_path / "a"),
                "--backbone",
                "efficientnet_lite0",
                "--cache-dir",
                str(weights_cache),
            ]
        )
        == 0
    )
    assert "checksum" in capsys.readouterr().out
