# The two commands of the README. Both set everything up first (idempotent).
.PHONY: run test

run:
	bash scripts/setup.sh
	.venv/bin/grm-studio serve

test:
	bash scripts/setup.sh test
	.venv/bin/python -m pytest
