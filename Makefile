# The two entry points: `make demo` runs ML-100k end to end through a local
# Kafka broker; `make test` runs the test suite against a real broker. Both
# set up what they need (virtual environment, editable install, Kafka jars)
# and can be run again.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KAFKA := deploy/kafka-local/kafka.sh
# Port of the demo's local broker; the tests use their own (19092).
KAFKA_PORT ?= 9092
export KAFKA_PORT

.PHONY: demo test install kafka-start kafka-stop bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

kafka-start:
	$(KAFKA) start

kafka-stop:
	$(KAFKA) stop

demo: $(STAMP)
	$(KAFKA) start
	$(BIN)/streamrec demo --bootstrap-servers 127.0.0.1:$(KAFKA_PORT)

test: $(STAMP)
	$(KAFKA) fetch
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(KAFKA) start
	$(BIN)/python bench/bench_worker.py --bootstrap-servers 127.0.0.1:$(KAFKA_PORT)
	$(BIN)/python bench/bench_models.py

clean:
	rm -rf $(VENV) build *.egg-info
