# `make run` and `make test` do all set-up on a fresh machine: they create .venv if missing and
# (re)install the project whenever pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PRESET ?= ppo-inverted-pendulum
ARGS ?=

.PHONY: run test bench bench-depth bench-envs bench-scaling bench-curves bench-curves-hopper bench-lockstep bench-speed bench-curves-purejaxrl bench-launches bench-device bench-multidevice sweep-coscaling sweep-depth lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m experiments.run $(PRESET) $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m experiments.benchmarks.throughput $(ARGS)

bench-depth: $(STAMP)
	$(BIN)/python -m experiments.benchmarks.depth $(ARGS)

# Raw simulator env steps/s of every purerl environment at 256 and 2,048 envs (random actions).
bench-envs: $(STAMP)
	$(BIN)/python -m experiments.benchmarks.envsteps --json runs/bench/envsteps.json \
		--markdown runs/bench/envsteps.md $(ARGS)

# PPO on cart-pole from 2^10 to 2^20 environments, each size in its own process: env steps/s
# and peak memory (docs/SCALING.md). Needs about 4 GB free at 2^20.
bench-scaling: $(STAMP)
	$(BIN)/python -m experiments.benchmarks.scaling --json runs/bench/scaling.json \
		--markdown runs/bench/scaling.md $(ARGS)

# Learning-curve parity with Brax's trainer, 5 seeds a side: inverted_pendulum at the issue's
# 1024 x 10 geometry (8 minibatches), then inverted_pendulum (spring and positional) and
# inverted_double_pendulum at Brax's published geometry (2048 envs, 16 unrolls of 5, 32
# minibatches) on a CPU budget. About 20 + 60 + 25 + 60 minutes on a 2-core CPU.
BRAX_GEOMETRY := --num-envs 2048 --unroll-length 5 --unrolls-per-iteration 16 --num-minibatches 32
bench-curves: $(STAMP)
	$(BIN)/python -m experiments.benchmarks.curves --env inverted_pendulum \
		--json runs/bench/curves-inverted_pendulum.json $(ARGS)
	$(BIN)/python -m experiments.benchmarks.curves --env inverted_pendulum $(BRAX_GEOMETRY) \
		--total-env-steps 1638400 --num-evals 10 \
		--json runs/bench/curves-inverted_pendulum-brax-geometry.json $(ARGS)
	$(BIN)/python -m experiments.benchmarks.curves --env inverted_pendulum --backend positional \
		$(BRAX_GEOMETRY) --total-env-steps 1638400 --num-evals 10 \
		--json runs/bench/curves-inverted_pendulum-positional.json $(ARGS)
	$(BIN)/python -m experiments.benchmarks.curves --env inverted_double_pendulum $(BRAX_GEOMETRY) \
		--total-env-steps 1966080 --num-evals 6 \
		--json runs/bench/curves-inverted_double_pendulum.json $(ARGS)

# purerl (Brax's algorithm and reset) and Brax's algorithm rebuilt from brax.training's pieces,
# each iteration and evaluation on the same key, at the issue's inverted_pendulum setting:
# both curves per seed and how far the parameters drift apart. About 3 minutes a seed.
bench-lockstep: $(STAMP)
	$(BIN)/python -m experiments.benchmarks.lockstep --seeds 5 --json runs/bench/lockstep.json $(ARGS)

# hopper (positional) at the same geometry on a CPU budget of 20 updates: about 70 minutes.
bench-curves-hopper: $(STAMP)
	$(BIN)/python -m experiments.benchmarks.curves --env hopper --backend positional \
		$(BRAX_GEOMETRY) --total-env-steps 3276800 --num-evals 10 \
		--json runs/bench/curves-hopper-positional.json $(ARGS)

# Speed against PureJaxRL at its configuration: PUREJAXRL is a checkout of
# luchris429/purejaxrl, PUREJAXRL_DEPS where its dependencies import from.
bench-speed: $(STAMP)
	$(BIN)/python -m experiments.benchmarks.speed --purejaxrl-dir $(PUREJAXRL) \
		--pythonpath $(PUREJAXRL_DEPS) --json runs/bench/speed.json $(ARGS)

# Learning against PureJaxRL's own ppo_continuous_action at its configuration (same PUREJAXRL and
# PUREJAXRL_DEPS): 10 seeds a side, vmapped, 1M steps of inverted_pendulum; purerl with its
# defaults and with PureJaxRL's timing of observation normalisation. About 30 minutes.
bench-curves-purejaxrl: $(STAMP)
	$(BIN)/python -m experiments.benchmarks.purejaxrl_curves --purejaxrl-dir $(PUREJAXRL) \
		--pythonpath $(PUREJAXRL_DEPS) --seeds 10 --num-updates 100 --chunks 10 \
		--variant "as_acted:observation_statistics=as_acted,observation_clip=null" \
		--json runs/bench/purejaxrl-curves.json $(ARGS)

# Kernel launches per update on an H200, counted without one (experiments/benchmarks/gpu_launches.py):
# purerl's and PureJaxRL's programs (PUREJAXRL: a checkout, or purerl's alone) compiled by XLA's
# GPU compiler for the H200's description, in the venv .gpu-launches-venv (jax 0.11.2 with CUDA,
# made on first use). GPU_PYTHON: a Python 3.12 or newer, which jax 0.11 needs. About 2.5 minutes.
GPU_PYTHON ?= python3.12
bench-launches:
	PY=$$($(PYTHON) experiments/benchmarks/anchor_venv.py --kind gpu-launches --python $(GPU_PYTHON)) && \
	PYTHONPATH=$(CURDIR) $$PY -m experiments.benchmarks.gpu_launches \
		$(if $(PUREJAXRL),--purejaxrl-dir $(PUREJAXRL)) --json runs/bench/launches.json $(ARGS)

# Training throughput on 1, 2, 4 simulated CPU devices and on 2 localhost processes x 2 devices.
bench-multidevice: $(STAMP)
	$(BIN)/python -m experiments.benchmarks.multidevice --json runs/bench/multidevice.json $(ARGS)

# The accelerator benchmark (experiments/benchmarks/device.py; docs/BENCHMARKS.md says how to
# prepare it): runs under a python that already has jax for the GPU, with no venv, because
# such machines are usually offline. DEVICE_SITE: where the other dependencies were unpacked
# (wheels, see docs); PUREJAXRL: a checkout of luchris429/purejaxrl, or the anchor is skipped.
DEVICE_OUT ?= runs/bench/device
bench-device:
	PYTHONPATH=$(DEVICE_SITE):$(CURDIR) $(PYTHON) -m experiments.benchmarks.device --out $(DEVICE_OUT) \
		$(if $(PUREJAXRL),--purejaxrl-dir $(PUREJAXRL)) $(ARGS)

# Co-scaling (docs/BENCHMARKS.md): PPO on cart-pole at equal env steps for num_envs 2^8..2^14,
# 4 minibatches (naive) against minibatches of 512 steps (Beukman et al.'s recipe), 3 seeds;
# then the final return against num_envs. About 30 minutes on a 2-core CPU.
sweep-coscaling: $(STAMP)
	$(BIN)/python -m experiments.sweep experiments/sweeps/coscaling.toml --sweep-dir runs/coscaling $(ARGS)
	$(BIN)/python -m experiments.plot runs/coscaling --across train.num_envs \
		--out runs/coscaling/final-vs-num-envs.png

# Does depth help? CRL on the point hardest maze at depth 4/8/16/32, 3 seeds (about an hour on
# a 2-core CPU); curves of success rate and time at goal, and final time at goal per depth.
sweep-depth: $(STAMP)
	$(BIN)/python -m experiments.sweep experiments/sweeps/depth.toml --sweep-dir runs/depth $(ARGS)
	$(BIN)/python -m experiments.plot runs/depth --out runs/depth/success.png
	$(BIN)/python -m experiments.plot runs/depth --metric eval/time_at_goal \
		--out runs/depth/time-at-goal.png
	$(BIN)/python -m experiments.plot runs/depth --metric eval/time_at_goal \
		--across agent.depth --out runs/depth/time-at-goal-vs-depth.png

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .bench-venv runs .pytest_cache
