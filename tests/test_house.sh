#!/usr/bin/env bash
# test_house.sh — the source tree keeps the shape docs/architecture.md
# draws:
#   - src/ has no loose files: every source lives in its layer's folder;
#   - a folder includes only from the layers below it (its own headers by
#     name), so dependencies point one way;
#   - every C file opens with a paragraph on what it holds
#     ("/*", then " * NAME — ...");
#   - no function reaches 100 lines (src/, fuzz/, tests/).
. "$(dirname "$0")/cli_lib.sh"

# The layers, bottom up; a folder may include from folders of a lower rank.
rank() {
  case $1 in
    base) echo 0 ;; gguf | kernels) echo 1 ;; text) echo 2 ;; model) echo 3 ;;
    tools | engine | plan) echo 4 ;; serve | bench | train) echo 5 ;; serve/http) echo 6 ;;
    cli) echo 9 ;; *) echo -1 ;;
  esac
}

# The layer a path under src/ belongs to: its folder, kernels/arch counting
# as kernels.
layer_of() {
  local d=${1%/*}
  case $d in kernels/*) d=kernels ;; esac
  echo "$d"
}

loose=$(find src -maxdepth 1 -type f -name '*.[ch]')
check '[ -z "$loose" ]' "files outside the layers' folders: $loose"

while IFS= read -r f; do
  from=$(layer_of "${f#src/}")
  r_from=$(rank "$from")
  check '[ "$r_from" -ge 0 ]' "$f: folder '$from' is not a layer (tests/test_house.sh, docs/architecture.md)"
  while IFS= read -r inc; do
    case $inc in ../* | */*) ;; *) continue ;; esac # same folder, or the parent's private header
    [[ $inc == ../* ]] && continue
    to=$(layer_of "$inc")
    [ "$to" = "$from" ] && continue
    r_to=$(rank "$to")
    check '[ "$r_to" -ge 0 ] && [ "$r_to" -lt "$r_from" ]' "$f includes $inc: $to is not below $from"
  done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
done < <(find src -name '*.[ch]' | sort)

# Every C file opens with its paragraph.
while IFS= read -r f; do
  name=${f##*/}
  check '[ "$(sed -n 1p "$f")" = "/*" ] && sed -n 2p "$f" | grep -q "^ \* $name — "' "$f: no opening paragraph"
done < <(find src tests fuzz -name '*.[ch]' | sort)

# No function reaches 100 lines: from the line its declaration starts (column
# 0) to its closing brace.
long=$(find src tests fuzz -name '*.[ch]' | sort | xargs awk '
  /^[A-Za-z_]/ && !/;[ \t]*$/ && !/^(typedef|struct|enum|union)[ \t].*\{[ \t]*$/ { if (!open) { start = FNR; name = $0 } }
  /^\{|\)[ \t]*\{[ \t]*$/ { if (start) open = 1 }
  /^\}[ \t]*$/ { if (open && FNR - start + 1 >= 100) print FILENAME ":" start ": " FNR - start + 1 " lines"; open = 0; start = 0 }
  /^\}.*;[ \t]*$/ { open = 0; start = 0 }')
check '[ -z "$long" ]' "functions of 100 lines or more: $long"
ok_funcs=$(find src -name '*.c' | xargs grep -c '^[A-Za-z_].*(' | awk -F: '{ s += $2 } END { print s }')
check '[ "$ok_funcs" -gt 500 ]' "found only $ok_funcs function lines in src/: is the checker reading the tree?"

report test_house
