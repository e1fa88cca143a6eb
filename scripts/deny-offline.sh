#!/usr/bin/env bash
# Runs every cargo-deny check (advisories, licenses, bans, sources) without network access, against a
# snapshot of the RustSec advisory database (plain files, by default supply-chain/advisory-db).
#
# cargo-deny reads advisory databases as git checkouts under its db-path, one directory per database URL,
# so the snapshot is committed into a throw-away repository in a temporary directory, and a copy of
# deny.toml that points db-path there is used. deny.toml itself stays the one policy file.
set -euo pipefail
cd "$(dirname "$0")/.."

snapshot="${ADVISORY_DB:-supply-chain/advisory-db}"
if [[ ! -d "$snapshot/crates" ]]; then
    echo "deny-offline: no advisory database snapshot at '$snapshot' (expected its crates/ folder)." >&2
    echo "  Set ADVISORY_DB to a copy of the RustSec advisory-db, or run 'make deny-advisories' where" >&2
    echo "  github.com is reachable." >&2
    exit 2
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The directory name cargo-deny derives from the default database URL (github.com/rustsec/advisory-db).
db="$work/dbs/advisory-db-3157b0e258782691"
mkdir -p "$db"
cp -R "$snapshot/." "$db/"
rm -rf "$db/.git"
# The commit carries the date of the newest advisory in the snapshot, so cargo-deny judges the
# database's age by its content, not by when it was copied here.
stamp="$(grep -rhoE '^date = "[0-9]{4}-[0-9]{2}-[0-9]{2}"' "$snapshot/crates" "$snapshot/rust" 2>/dev/null \
    | cut -d'"' -f2 | sort | tail -1)"
stamp="${stamp:?no dated advisory in $snapshot}T00:00:00Z"
(
    cd "$db"
    git init -q
    git add -A
    GIT_AUTHOR_DATE="$stamp" GIT_COMMITTER_DATE="$stamp" \
        git -c user.name=okta-ingest -c user.email=deny@localhost -c commit.gpgsign=false \
        commit -qm "RustSec advisory-db snapshot"
)

# Same policy, database path redirected to the snapshot.
sed "s|^db-urls = .*|&\ndb-path = \"$work/dbs\"|" deny.toml > "$work/deny.toml"
grep -q "^db-path = \"$work/dbs\"" "$work/deny.toml" || { echo "deny-offline: deny.toml has no db-urls line to anchor db-path" >&2; exit 2; }

# --offline needs every crate of the lockfile in the local cache.
cargo fetch --locked --quiet
cargo deny --offline --config "$work/deny.toml" check --hide-inclusion-graph advisories licenses bans sources
