"""Every config group option composes; the command line behaves as Hydra users expect."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException

from kanji_lab.config import config_dir

CONF = Path(config_dir())
GROUPS = sorted(
    (group.name, option.stem)
    for group in CONF.iterdir()
    if group.is_dir() and group.name != "hydra"
    for option in group.glob("*.yaml")
)


@pytest.mark.parametrize(("group", "option"), GROUPS, ids=[f"{g}={o}" for g, o in GROUPS])
def test_every_group_option_composes(group, option):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"{group}={option}"])
    assert cfg.task_name == "train"
    assert cfg.model.arch and cfg.data.source


def test_groups_named_in_the_brief_exist():
    for group, options in {
        "trainer": {"default", "cpu", "gpu", "ddp", "ddp_sim"},
        "debug": {"fdr", "limit", "overfit"},
        "logger": {"csv"},
        "quantization": {"none"},
        "model": {"cnn"},
        "data": {"synthetic"},
    }.items():
        assert options <= {p.stem for p in (CONF / group).glob("*.yaml")}, group


def test_unknown_key_fails_clearly():
    with (
        initialize_config_dir(config_dir=str(CONF), version_base="1.3"),
        pytest.raises(ConfigCompositionException, match="Could not override 'trainer.max_epoch'"),
    ):
        compose("train", overrides=["trainer.max_epoch=3"])


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "KANJI_LAB_OUTPUT": str(cwd / "outputs")}
    return subprocess.run(
        [sys.executable, "-m", "kanji_lab", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # the CLI imports torch and Lightning; on a loaded 2-core machine that is slow
    )


def test_the_cli_composes_configs_without_loading_the_training_stack():
    """--cfg, --help, --info and bad overrides answer before torch and Lightning load."""
    code = "import sys, kanji_lab.entry; print(sorted({'torch', 'lightning'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_cli_cfg_job_and_info(tmp_path):
    job = _cli("--cfg", "job", "model.net.width=16", cwd=tmp_path)
    assert job.returncode == 0, job.stderr
    assert "width: 16" in job.stdout
    info = _cli("--info", cwd=tmp_path)
    assert info.returncode == 0 and "Config search path" in info.stdout


def test_cli_unknown_group_option_lists_choices(tmp_path):
    bad = _cli("model=nope", cwd=tmp_path)
    assert bad.returncode != 0
    assert "Could not find 'model/nope'" in bad.stderr and "cnn" in bad.stderr


def test_cli_bad_input_exits_with_one_clear_line(tmp_path):
    empty = _cli('data.classes=""', cwd=tmp_path)
    assert empty.returncode == 2
    assert "empty class set" in empty.stdout + empty.stderr
    assert "Traceback" not in empty.stdout + empty.stderr
    unknown = _cli("data.source=nope", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "unknown data source 'nope'" in unknown.stdout + unknown.stderr


@pytest.mark.parametrize(
    "override, says",
    [
        ("+model.net.codebook=tree", "model.net of 'hiercode': codebook was removed"),
        ("+model.net.nonsense=1", "unexpected keyword argument 'nonsense'"),
    ],
)
def test_cli_network_settings_it_refuses_exit_with_one_clear_line(override, says, tmp_path):
    data = ['data.classes="亜唖"', f"paths.cache_dir={tmp_path / 'cache'}", "debug=fdr"]
    bad = _cli("model=hiercode", override, *data, cwd=tmp_path)
    out = bad.stdout + bad.stderr
    assert bad.returncode == 2, out[-2000:]
    assert says in out and "conf/model/hiercode.yaml" in out and "Traceback" not in out


def test_cli_multirun_trains_each_job_in_its_own_directory(tmp_path):
    env_cache = f"paths.cache_dir={tmp_path / 'cache'}"
    sweep = _cli(
        "-m",
        "model.net.width=4,8",
        "model.net.features=16",
        'data.classes="亜唖"',
        env_cache,
        "debug=fdr",
        "callbacks.progress_bar=null",
        cwd=tmp_path,
    )
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    jobs = sorted((tmp_path / "outputs" / "train" / "multiruns").glob("*/*/metrics.json"))
    assert [p.parent.name for p in jobs] == ["0", "1"]
    assert "kanji_lab run: cnn on synthetic (2 classes)" in sweep.stdout


def test_cli_resume_of_a_path_that_is_no_run(tmp_path):
    # Hydra creates the run directory before the task starts, so the check must not rely on it
    bad = _cli(f"resume={tmp_path / 'not_a_run'}", cwd=tmp_path)
    assert bad.returncode == 2
    assert "not a training run directory" in bad.stdout + bad.stderr
