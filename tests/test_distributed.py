"""purerl.distributed's settings: flags, PURERL_* environment variables and Slurm, checked
before anything waits on them (the multi-process runs themselves: tests/test_parallel.py)."""

import pytest

from purerl import distributed
from purerl.checks import ConfigError
from purerl.distributed import DistributedConfig


def test_environment_fills_only_the_fields_left_unset():
    environ = {
        "PURERL_COORDINATOR_ADDRESS": "10.0.0.1:1234",
        "PURERL_NUM_PROCESSES": "4",
        "PURERL_PROCESS_ID": "3",
    }
    config = distributed.from_environment(DistributedConfig(process_id=2), environ)
    assert config == DistributedConfig("10.0.0.1:1234", 4, 2)
    assert distributed.from_environment(DistributedConfig(), {}) == DistributedConfig()
    with pytest.raises(ConfigError) as error:
        distributed.from_environment(DistributedConfig(), {"PURERL_PROCESS_ID": "one"})
    assert error.value.field == "distributed.process_id" and "'one'" in str(error.value)


@pytest.mark.parametrize(
    "config, field, words",
    [
        (DistributedConfig("h:1", 2, 2), "process_id", "0 .. 1"),
        (DistributedConfig("h:1", 2, -1), "process_id", "0 .. 1"),
        (DistributedConfig("h:1", 2, None), "process_id", "got None"),
        (DistributedConfig(None, 2, 0), "coordinator_address", "host:port"),
        (DistributedConfig("no-port", 2, 0), "coordinator_address", "host:port"),
        (DistributedConfig(None, None, 1), "process_id", "set distributed.num_processes"),
        (DistributedConfig(None, 0, None), "num_processes", "at least 1"),
        (DistributedConfig("h:1", 2, 0, initialization_timeout=0), "initialization_timeout", ""),
    ],
)
def test_bad_settings_name_their_field(config, field, words):
    with pytest.raises(ConfigError) as error:
        distributed.validate(config)
    assert error.value.field == f"distributed.{field}" and words in str(error.value)


def test_valid_settings_pass():
    for config in (
        DistributedConfig(),
        DistributedConfig(num_processes=1),
        DistributedConfig("[::1]:8476", 2, 1),
        DistributedConfig("node-7.cluster:8476", 16, 15),
    ):
        assert distributed.validate(config) is config


def test_one_process_touches_nothing(monkeypatch):
    import jax

    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: pytest.fail(f"called {kw}"))
    assert distributed.initialize(DistributedConfig(), environ={}) == 1
    # A Slurm job step of one task is one process too.
    assert (
        distributed.initialize(DistributedConfig(), {"SLURM_JOB_ID": "1", "SLURM_NTASKS": "1"}) == 1
    )


def test_a_slurm_step_of_several_tasks_lets_jax_find_its_coordinator(monkeypatch):
    import jax

    calls = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: calls.append(kw))
    monkeypatch.setattr(jax.config, "update", lambda *args: calls.append(args))
    environ = {"SLURM_JOB_ID": "7", "SLURM_NTASKS": "8", "SLURM_STEP_NUM_TASKS": "4"}
    assert distributed.slurm_tasks(environ) == 4
    distributed.initialize(DistributedConfig(heartbeat_timeout=9), environ)
    assert calls == [
        ("jax_cpu_collectives_implementation", "gloo"),
        {"initialization_timeout": 60, "heartbeat_timeout_seconds": 9},
    ]
