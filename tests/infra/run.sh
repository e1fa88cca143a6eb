#!/usr/bin/env bash
# Validates infra/template.yaml: cfn-lint, checkov, then the pytest suite that deploys it to moto.
# Installs what it needs into virtualenvs under $OKTA_INGEST_VENVS (default: ~/.cache/okta-ingest), reusing
# them while the pinned requirements are unchanged. Needs only python3 (3.11+) with pip.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venvs="${OKTA_INGEST_VENVS:-${XDG_CACHE_HOME:-$HOME/.cache}/okta-ingest}"
python="${PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1

# make_venv DIR REQUIREMENTS: (re)creates DIR with REQUIREMENTS unless it already holds exactly them.
make_venv() {
  local dir="$1" requirements="$2" stamp
  stamp="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [[ -x "$dir/bin/python" && "$(cat "$dir/.requirements-sha256" 2>/dev/null)" == "$stamp" ]]; then
    return
  fi
  rm -rf "$dir"
  mkdir -p "$(dirname "$dir")"
  # Some distributions ship python3 without the venv module; virtualenv brings its own pip.
  if ! "$python" -m venv "$dir" >/dev/null 2>&1; then
    rm -rf "$dir"
    PIP_BREAK_SYSTEM_PACKAGES=1 "$python" -m pip install -q --user virtualenv
    "$python" -m virtualenv -q "$dir"
  fi
  "$dir/bin/python" -m pip install -q -r "$requirements"
  echo "$stamp" >"$dir/.requirements-sha256"
}

echo "infra: preparing tools in $venvs"
make_venv "$venvs/infra-tests" "$here/requirements.txt"
make_venv "$venvs/checkov" "$here/requirements-checkov.txt"

cd "$root"
echo "infra: cfn-lint"
"$venvs/infra-tests/bin/cfn-lint" infra/template.yaml

echo "infra: checkov"
# No network here: skip checkov's guideline and module downloads.
BC_SKIP_MAPPING=TRUE "$venvs/checkov/bin/checkov" -f infra/template.yaml --framework cloudformation \
  --skip-download --compact --quiet

echo "infra: pytest"
"$venvs/infra-tests/bin/python" -m pytest -q -p no:cacheprovider tests/infra
