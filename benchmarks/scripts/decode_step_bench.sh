# Sourced by the decode-step run scripts: bench NAME TIMEOUT ARGS... runs `asynctls-hf bench decode-step` (20 steps
# after 4) into $OUT/NAME, time-boxed, and appends its result rows (and any error) to $OUT/log.txt.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
bench() {
  local name=$1 limit=$2
  shift 2
  timeout "$limit" python -m asynctls_hf bench decode-step --steps 20 --warmup 4 --out "$OUT/$name" "$@" 2>&1 \
    | grep -v Warning | grep "method=\|rror" | tee -a "$OUT/log.txt"
}
