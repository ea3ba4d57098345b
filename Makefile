# Two commands on a fresh machine: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast install exported lint benchmark clean node-client corpus \
	speech-packages real-speech system-packages

$(BIN)/python:
	$(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e ".[train,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP) system-packages
	$(BIN)/rnnkit demo

test: $(STAMP) node-client
	$(BIN)/python -m pytest -q

test-fast: $(STAMP) node-client
	$(BIN)/python -m pytest -q -m "not slow"

exported: $(STAMP)
	$(BIN)/rnnkit demo --ship

lint: $(STAMP)
	$(BIN)/ruff check rnnkit apps tests benchmarks tools

benchmark: $(STAMP)
	$(BIN)/python benchmarks/inference.py

# The English→Spanish corpus (real English translated by Apertium) into data/ (git-ignored).
# Needs: apt-get install apertium apertium-eng-spa fortunes fortunes-min wordnet-base
# dict-foldoc dict-freedict-eng-deu (each text source is optional; apertium is not).
# `rnnkit translation train` builds the same corpus into its cache on first use.
corpus: $(STAMP)
	$(BIN)/python -m apps.translation.corpus build --out data/eng_spa.tsv

# speech_to_text's Debian packages, best effort (root + apt-get): espeak-ng and MBROLA voices
# (contrib/non-free), flite, festival + voices, pocketsphinx-testdata (real test speech).
speech-packages:
	bash tools/install_speech_packages.sh

# Debian packages of the default data (best effort; root + apt-get, else one warning line each):
# Apertium eng-spa and its English text sources, the speech engines and real recordings, and
# Noto Color Emoji (captioning's object scenes).
system-packages: speech-packages
	bash tools/install_translation_packages.sh
	bash tools/install_captioning_packages.sh

# WER/CER of the shipped speech model on every installed real-speech recording set.
real-speech: $(STAMP)
	$(BIN)/python -m apps.speech_to_text.real_speech exported/speech_to_text --verbose

# The Node.js reference client's packages (clients/node). Best effort: without node/npm it
# says so and the client's tests then fail with the same advice (opt out: RNNKIT_SKIP_NODE_CLIENT=1).
# onnxruntime-node's postinstall download (GPU binaries) is skipped: the CPU binaries are bundled.
NODE_STAMP := clients/node/node_modules/.rnnkit-installed
node-client:
	@if [ -f $(NODE_STAMP) ] && [ $(NODE_STAMP) -nt clients/node/package-lock.json ]; then \
		exit 0; \
	elif command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
		(cd clients/node && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error) \
			&& touch $(NODE_STAMP) \
			|| echo "warning: npm ci failed in clients/node: the Node client tests will fail"; \
	else \
		echo "warning: node/npm not found: install Node.js >= 20 for the Node client tests" \
			"(tests/clients fail without it; set RNNKIT_SKIP_NODE_CLIENT=1 to opt out)"; \
	fi

clean:
	rm -rf $(VENV) runs .pytest_cache clients/node/node_modules
