#!/usr/bin/env bash
# The fast test lane under each CPU kernel family torch and oneDNN can pick, one after the other:
#   ATEN_CPU_CAPABILITY=default   ATen's portable kernels (no SIMD dispatch)
#   ATEN_CPU_CAPABILITY=avx2      ATen's AVX2 kernels
#   (unset)                       the machine's best (AVX-512 where the CPU has it, NEON on arm64)
#   ONEDNN_MAX_CPU_ISA=AVX2       oneDNN's convolutions and matmuls capped at AVX2
# float32 results differ between them in the last bits; every numerical test must hold under all.
# Usage: tests/kernel_sweep.sh [pytest args...]   (default: the fast lane, -m "not slow"; TEST_WORKERS=2)
# Prints one line per setting (the capability torch reports, passed/failed, seconds) and exits
# non-zero if any setting failed. make test-kernels runs it.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
args=("$@")
workers=${TEST_WORKERS:-2}
[ ${#args[@]} -gt 0 ] || args=(-m "not slow" tests)
[ "$workers" -le 1 ] || args=(-n "$workers" "${args[@]}")
log_dir=${KERNEL_SWEEP_LOGS:-dist/kernel-sweep}
mkdir -p "$log_dir"

settings=("ATEN_CPU_CAPABILITY=default" "ATEN_CPU_CAPABILITY=avx2" "best" "ONEDNN_MAX_CPU_ISA=AVX2")
summary=()
failed=0
for setting in "${settings[@]}"; do
  env_args=()
  [ "$setting" = best ] || env_args=("$setting")
  name=${setting//[^A-Za-z0-9_.-]/_}
  capability=$(env "${env_args[@]}" "$PY" -c "import torch; print(torch.backends.cpu.get_cpu_capability())" 2>/dev/null)
  echo "kernel sweep: $setting (torch reports $capability): pytest ${args[*]}"
  start=$(date +%s)
  env "${env_args[@]}" "$PY" -m pytest -q -p no:cacheprovider "${args[@]}" >"$log_dir/$name.log" 2>&1
  rc=$?
  seconds=$(( $(date +%s) - start ))
  result=$(tail -n 1 "$log_dir/$name.log")
  summary+=("$(printf '%-28s %-8s rc=%d %4ds  %s' "$setting" "$capability" "$rc" "$seconds" "$result")")
  if [ $rc -ne 0 ]; then
    failed=1
    grep -E '^(FAILED|ERROR)' "$log_dir/$name.log" | sed 's/^/    /'
  fi
done
echo
echo "kernel sweep summary (logs in $log_dir):"
printf '  %s\n' "${summary[@]}"
exit $failed
