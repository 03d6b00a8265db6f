# The two commands of the README. Both set everything up first (idempotent).
.PHONY: run test check judge-model

run:
	bash scripts/setup.sh
	.venv/bin/grm-studio serve

test:
	bash scripts/setup.sh test
	.venv/bin/python -m pytest

# The checks CI runs after the tests: ruff on the whole repository, then mypy on
# what [tool.mypy] names (core/); both configured in pyproject.toml. Both run,
# and the target fails if either finds something. Sets up .venv if it has no ruff.
check:
	[ -x .venv/bin/ruff ] && [ -x .venv/bin/mypy ] || bash scripts/setup.sh test
	.venv/bin/ruff check .; lint=$$?; .venv/bin/mypy && exit $$lint

# Train GRM Studio's own judge (cold start on the critique data, an RFT round on its
# own samples of labelled pairs), ship it to models/grm-studio-judge and judge the demo
# with it; every stage resumable. Measured in pieces on 2 shared CPU cores: cold start
# ~95 min of steps, the round ~60 min of sampling (40 items) + 9 min of training, the
# demo ~20-40 min; never timed end to end from a fresh clone.
judge-model:
	bash scripts/setup.sh
	.venv/bin/grm-studio recipe
