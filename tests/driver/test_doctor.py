"""`doctor` on a CPU machine: registrations reported, GPU pieces missing but not fatal."""

from qwenlong_verl.driver.doctor import broken, check_gpu, run_checks
from qwenlong_verl.worker import plugin


def test_doctor_cli_passes_on_cpu(cli):
    out = cli("doctor")
    assert out.returncode == 0, out.stdout + out.stderr
    text = " ".join(out.stdout.split())
    assert "install OK" in text
    for reg in plugin.REGISTRATIONS:
        for name in reg.names:
            assert name in text


def test_gpu_checks_are_optional():
    checks = check_gpu()
    assert checks and all(not c.required for c in checks)


def test_registrations_all_ok():
    checks = run_checks()
    assert broken(checks) == []
    regs = [c for c in checks if c.section == "registrations"]
    assert len(regs) == len(plugin.REGISTRATIONS)
    assert all(c.ok for c in regs)


def test_doctor_fails_when_plugin_disabled(cli):
    out = cli("doctor", env={"VERL_USE_EXTERNAL_PLUGINS": "none"})
    assert out.returncode == 1
    assert "VERL_USE_EXTERNAL_PLUGINS" in out.stdout


def test_gpu_fix_hints_are_commands_that_work_here():
    """No `pip install 'qwenlong-verl[gpu]'` (the package is on no index): the pins of this install's gpu extra,
    and flash-attn (no wheel on PyPI) built against the installed torch."""
    import configparser

    from support import ROOT

    from qwenlong_verl.driver.doctor import GPU_BUILD_TOOLS, install_command, pin

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    gpu = cfg["options.extras_require"]["gpu"].split()
    for dist in ("torch", "vllm", "flash-attn"):
        assert pin(dist) in gpu
    fixes = {c.item: c.fix for c in check_gpu()}
    for dist in ("vllm", "flash-attn"):
        if dist in fixes and fixes[dist]:
            assert fixes[dist] == f"on a GPU machine: {install_command(dist)}"
            assert "qwenlong-verl[gpu]" not in fixes[dist]
    assert install_command("flash-attn") == (
        f"pip install {GPU_BUILD_TOOLS} && pip install --no-build-isolation '{pin('flash-attn')}'"
    )


def test_reinstall_hint_names_the_checkout_of_an_editable_install(tmp_path):
    """Run outside the checkout (inside it, its egg-info is found first): the editable install's own folder."""
    import subprocess
    import sys

    from support import ROOT

    out = subprocess.run(
        [sys.executable, "-c", "from qwenlong_verl.driver.doctor import reinstall_command; print(reinstall_command())"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"pip install -e '{ROOT}'"


def test_a_second_doctor_is_fast_and_quiet_and_fresh_redoes_the_checks(cli, tmp_path):
    """The veRL import checks (seconds) are remembered per environment; a pass prints one line, no veRL noise."""
    import time

    env = {"XDG_CACHE_HOME": str(tmp_path)}
    first = cli("doctor", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert (tmp_path / "qwenlong-verl" / "doctor.json").is_file()
    start = time.perf_counter()
    second = cli("doctor", env=env)
    elapsed = time.perf_counter() - start
    assert second.returncode == 0 and second.stderr == ""
    assert "install OK" in second.stdout and len(second.stdout.strip().splitlines()) <= 3
    assert elapsed < 5.0
    fresh = cli("doctor", "--fresh", "--verbose", env=env)
    assert fresh.returncode == 0 and "private hooks" in fresh.stdout
