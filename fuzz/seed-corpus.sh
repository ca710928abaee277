#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the shared feed corpus and tests/fuzz-regressions/.
#
# The shared corpus (default: ../shared/corpus beside the repository, i.e. /work/shared/corpus)
# holds publishers' text: it is copied only into fuzz/corpus/, which git ignores, never into
# the repository. Files are named by content hash, so re-running adds nothing twice.
#
# usage: fuzz/seed-corpus.sh [SHARED_CORPUS_DIR]
set -euo pipefail

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(dirname "$fuzz_dir")"
shared="${1:-$repo_dir/../shared/corpus}"
[[ -d "$shared" ]] || { echo "no shared corpus at $shared" >&2; exit 1; }

add() { # add TARGET FILE: copy FILE into corpus/TARGET under its hash
    local dst="$fuzz_dir/corpus/$1"
    mkdir -p "$dst"
    cp -- "$2" "$dst/$(sha1sum < "$2" | cut -c1-40)"
}

# Feed documents of every kind (the JSON files under aux-country-names are not feeds, and
# feed-rs's *.serde.json are expected outputs). libFuzzer cuts files over -max_len itself.
while IFS= read -r -d '' f; do
    add parse_feed "$f"
    # Small feeds are also markup for html_to_text (tags, entities, CDATA, escaped HTML).
    if (( $(stat -c %s "$f") <= 16384 )); then add html_to_text "$f"; fi
done < <(find "$shared" -type f \
    ! -path '*/aux-country-names/*' ! -name 'LICENSE*' ! -name '*.md' ! -name '*.tsv' \
    ! -name '*.serde.json' -print0)

# Matcher: localized country names, several per line, lines as title/summary/content/cats.
if command -v python3 > /dev/null; then
    python3 - "$shared/aux-country-names" "$fuzz_dir/corpus/matcher" <<'PY'
import hashlib, json, os, sys
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
for lang in sorted(os.listdir(src)):
    path = os.path.join(src, lang, "country.json")
    if not os.path.isfile(path):
        continue
    names = list(json.load(open(path, encoding="utf-8")).values())
    for i in range(0, len(names), 24):
        chunk = names[i:i + 24]
        lines = [" ".join(chunk[j:j + 6]) for j in range(0, len(chunk), 6)]
        data = "\n".join(lines).encode("utf-8")
        with open(os.path.join(dst, hashlib.sha1(data).hexdigest()), "wb") as f:
            f.write(data)
PY
else
    echo "python3 not found: matcher corpus gets only the regression inputs" >&2
fi

# Article pages for extract: the shared benchmark's pages, gunzipped (beside the feed corpus).
articles="$(dirname "$shared")/articles/html"
if [[ -d "$articles" ]]; then
    mkdir -p "$fuzz_dir/corpus/extract"
    for f in "$articles"/*.html.gz; do
        [[ -e "$f" ]] || continue
        tmp="$(mktemp)"; gunzip -c -- "$f" > "$tmp"; add extract "$tmp"; rm -f -- "$tmp"
    done
fi

# Every saved regression input seeds its own target.
for f in "$repo_dir"/tests/fuzz-regressions/*.bin; do
    [[ -e "$f" ]] || continue
    name="$(basename "$f")"
    add "${name%%-*}" "$f"
done

for t in parse_feed html_to_text matcher extract; do
    echo "$t: $(find "$fuzz_dir/corpus/$t" -type f 2>/dev/null | wc -l) seeds"
done
