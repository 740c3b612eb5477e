#!/usr/bin/env bash
# Run the CUDA kernels of csrc/kernels on the CPU (tests/cuda_emu) and check them against their CPU twins:
#
#   1. three emulated builds of the self-test, each of which must pass with no report:
#        plain  -O0 --coverage                                        (emulator checks + line coverage)
#        asan   -fsanitize=address,undefined -fno-sanitize-recover=all
#        tsan   -fsanitize=thread (halt on the first report)
#   2. negative controls (tests/cuda_emu/negative_controls.pl): broken copies of the kernels generated from the real
#      sources, each of which the build meant to catch it must reject, for the expected reason;
#   3. line coverage of the kernel sources by the emulated CUDA run (gcov), per file, with the lines never executed.
#
# Needs only GCC >= 10 (g++, gcov, its sanitizer runtimes) and perl. Objects are reused between runs (each object is
# rebuilt when its flags or any source/header it includes changed). About 2-4 minutes on 2 cores from a fresh clone.
# Usage: scripts/cuda_emu_check.sh [--no-controls] [--no-coverage]      build folder: $CUDA_EMU_OUT (build/cuda-emu)
# Exit code: 0 all passed; 1 a build failed its self-test, a control was not rejected, or a build broke; 2 bad setup.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${CUDA_EMU_OUT:-build/cuda-emu}
CXX=${CXX:-g++}
GCOV=${GCOV:-gcov}
KDIR=$ROOT/csrc/kernels
EMU=$ROOT/tests/cuda_emu
OPS=(focal_gather focal_scatter ample_fuse_pool ample_fuse_blend select_frames gather_conv1x1 conv1x1_scatter temporal_aggregate
     bl_merge fullvideo_cluster focus_crop)
DO_CONTROLS=1
DO_COVERAGE=1
for a in "$@"; do
  case $a in
    --no-controls) DO_CONTROLS=0 ;;
    --no-coverage) DO_COVERAGE=0 ;;
    *) echo "usage: scripts/cuda_emu_check.sh [--no-controls] [--no-coverage]" >&2; exit 2 ;;
  esac
done

T_START=$SECONDS
say() { printf 'cuda_emu_check: %s\n' "$*"; }
die() { printf 'cuda_emu_check: ERROR: %s\n' "$*" >&2; exit "${2:-2}"; }

# ---- tools ------------------------------------------------------------------------------------------------------------
command -v "$CXX" >/dev/null 2>&1 || die "C++ compiler '$CXX' not found: install GCC >= 10 (Debian/Ubuntu: apt-get install g++) or set CXX"
"$CXX" -v 2>&1 | grep -q '^gcc version' || die "'$CXX' is not GCC (the emulator's sanitizer and gcov setup is GCC's): set CXX=g++"
GCC_VER=$("$CXX" -dumpfullversion -dumpversion | head -1)
(( ${GCC_VER%%.*} >= 10 )) || die "GCC >= 10 needed (for _Float16 and C++17), found $CXX $GCC_VER"
command -v perl >/dev/null 2>&1 || die "perl not found (used to rewrite .cu sources): apt-get install perl"
PERL_VER=$(perl -e 'printf "%vd", $^V')
if (( DO_COVERAGE )); then
  command -v "$GCOV" >/dev/null 2>&1 || die "gcov not found (it comes with GCC): set GCOV or pass --no-coverage"
  GCOV_VER=$("$GCOV" --version | head -1 | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | tail -1)
  [[ ${GCOV_VER%%.*} == "${GCC_VER%%.*}" ]] ||
    die "gcov $GCOV_VER does not match $CXX $GCC_VER (set GCOV=gcov-${GCC_VER%%.*}) or pass --no-coverage"
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
for san in address,undefined thread; do  # the sanitizer runtimes ship separately on some distributions
  echo 'int main() { return 0; }' >"$OUT/probe.cpp"
  "$CXX" -fsanitize=$san "$OUT/probe.cpp" -o "$OUT/probe" >/dev/null 2>&1 ||
    die "$CXX cannot link -fsanitize=$san (install GCC's sanitizer runtimes, e.g. apt-get install libasan8 libubsan1 libtsan2)"
done
rm -f "$OUT/probe.cpp" "$OUT/probe"
# TSan of GCC < 13 cannot map its shadow memory with the large mmap randomisation of recent kernels; run it with
# address randomisation off when the platform lets us (it changes nothing else).
NO_ASLR=()
if command -v setarch >/dev/null 2>&1 && setarch "$(uname -m)" -R true 2>/dev/null; then NO_ASLR=(setarch "$(uname -m)" -R); fi
say "$CXX $GCC_VER, perl $PERL_VER${GCOV_VER:+, gcov $GCOV_VER}; build folder ${OUT#$ROOT/}"

# ---- incremental compile ------------------------------------------------------------------------------------------------
# compile SRC OBJ FLAGS...: rebuild OBJ when it is missing, its command line changed, or a file it depends on (from
# the compiler's own dependency list) is newer; runs up to $JOBS compiles at once (CUDA_EMU_JOBS, default: all cores).
# A compile that fails leaves no OBJ.cmd, which finish_compiles reports. gen_cpp rewrites a .cu only when its text
# changed, so unchanged sources keep their objects.
JOBS=${CUDA_EMU_JOBS:-$(nproc 2>/dev/null || echo 1)}
COUNTS=$OUT/.compile-counts
: >"$COUNTS"
PENDING=()
compile_now() {
  local src=$1 obj=$2
  shift 2
  local cmd="$CXX $* -c $src -o $obj"
  if [[ -f $obj && -f $obj.d && -f $obj.cmd && "$(<"$obj.cmd")" == "$cmd" ]]; then
    local dep stale=0
    for dep in $(sed -e 's/^[^:]*://' -e 's/\\$//' "$obj.d"); do
      [[ -e $dep && ! $dep -nt $obj ]] || { stale=1; break; }
    done
    if (( !stale )); then echo R >>"$COUNTS"; return 0; fi
  fi
  rm -f "$obj" "$obj.cmd"
  if "$CXX" "$@" -MMD -MF "$obj.d" -c "$src" -o "$obj"; then
    echo "$cmd" >"$obj.cmd"
    echo C >>"$COUNTS"
  else
    echo "cuda_emu_check: compile failed: $cmd" >&2
  fi
}
compile() {
  PENDING+=("$2")
  if (( JOBS <= 1 )); then compile_now "$@"; return; fi
  while (( $(jobs -rp | wc -l) >= JOBS )); do wait -n || true; done
  compile_now "$@" &
}
finish_compiles() {
  wait
  local o
  for o in "${PENDING[@]}"; do [[ -f $o.cmd ]] || die "compile of $o failed (see above)" 1; done
  PENDING=()
}
n_compiled() { grep -c C "$COUNTS" || true; }
n_reused() { grep -c R "$COUNTS" || true; }
gen_cpp() {  # gen_cpp FILE.cu OUT.cpp
  perl "$EMU/cu2cpp.pl" "$1" >"$2.tmp" || die "cu2cpp.pl failed on $1" 1
  if cmp -s "$2.tmp" "$2"; then rm -f "$2.tmp"; else mv -f "$2.tmp" "$2"; fi
}
link() {  # link OUT FLAGS... -- OBJS...
  local out=$1 flags=() objs=()
  shift
  while [[ $1 != -- ]]; do flags+=("$1"); shift; done
  shift
  objs=("$@")
  local cmd="$CXX ${flags[*]} ${objs[*]} -o $out" o relink=0
  [[ -f $out && -f $out.cmd && "$(<"$out.cmd")" == "$cmd" ]] || relink=1
  for o in "${objs[@]}"; do [[ $o -nt $out ]] && relink=1; done
  if (( relink )); then
    "$CXX" "${flags[@]}" "${objs[@]}" -o "$out" || die "link failed: $cmd" 1
    echo "$cmd" >"$out.cmd"
  fi
}

# ---- the builds -------------------------------------------------------------------------------------------------------
COMMON=(-std=c++17 -g -Wall -Wextra -Wno-unused-parameter -Wno-unknown-pragmas -I"$EMU/shim" -DAFN_WITH_CUDA_RUNTIME)
declare -A FLAGS=(
  [plain]="-O0 --coverage"
  [asan]="-O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"
  [tsan]="-O1 -fsanitize=thread"
)
# What each build runs: the CUDA half always; the CPU twins too where the build adds something (coverage, ASan/UBSan).
declare -A RUN_ARGS=([plain]="" [asan]="" [tsan]="--cuda-only")
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS=halt_on_error=1:exitcode=66
export EMU_STATS=1

build_objs() {  # build_objs NAME -> device + twin + selftest objects in $OUT/NAME
  local name=$1 dir=$OUT/$1 op
  local -a fl
  read -r -a fl <<<"${FLAGS[$name]}"
  mkdir -p "$dir/gen"
  for op in "${OPS[@]}"; do
    gen_cpp "$KDIR/$op.cu" "$dir/gen/$op.cpp"
    compile "$dir/gen/$op.cpp" "$dir/$op.o" "${COMMON[@]}" "${fl[@]}" -I"$KDIR" -D__CUDA_ARCH__=900
    compile "$KDIR/${op}_cpu.cpp" "$dir/${op}_cpu.o" "${COMMON[@]}" "${fl[@]}" -I"$KDIR"
  done
  compile "$KDIR/selftest.cpp" "$dir/selftest.o" "${COMMON[@]}" "${fl[@]}" -I"$KDIR"
  finish_compiles
}

objs_of() {  # objs_of NAME [OP REPLACEMENT_OBJ]: the self-test's objects, one device object optionally replaced
  local dir=$OUT/$1 op
  for op in "${OPS[@]}"; do
    if [[ $op == "${2:-}" ]]; then echo "$3"; else echo "$dir/$op.o"; fi
    echo "$dir/${op}_cpu.o"
  done
  echo "$dir/selftest.o"
}

run_selftest() {  # run_selftest NAME BINARY LOG ARGS... -> exit code of the self-test
  local name=$1 bin=$2 log=$3
  shift 3
  local pre=()
  [[ $name == tsan ]] && pre=("${NO_ASLR[@]}")
  local rc=0
  # (in a subshell whose stderr is dropped: the shell's own "Aborted" notice for an emulator abort stays out of the
  # output; the abort message itself is in the log)
  ( "${pre[@]}" "$bin" "$@" >"$log" 2>&1; exit $? ) 2>/dev/null || rc=$?
  return $rc
}

FAILED=0
declare -A SUMMARY
for name in plain asan tsan; do
  t0=$SECONDS
  c0=$(n_compiled)
  build_objs "$name"
  read -r -a fl <<<"${FLAGS[$name]}"
  mapfile -t objs < <(objs_of "$name")
  link "$OUT/$name/selftest" "${fl[@]}" -- "${objs[@]}"
  t1=$SECONDS
  [[ $name == plain ]] && find "$OUT/plain" -name '*.gcda' -delete
  read -r -a args <<<"${RUN_ARGS[$name]}"
  log=$OUT/$name/selftest.log
  rc=0
  run_selftest "$name" "$OUT/$name/selftest" "$log" "${args[@]}" || rc=$?
  t2=$SECONDS
  cuda_line=$(grep -E '^CUDA launchers: [0-9]+ passed, [0-9]+ failed' "$log" || true)
  cpu_line=$(grep -E '^CPU twins: ' "$log" || true)
  stats=$(grep -E '^cuda_emu: [0-9]+ launches' "$log" | sed 's/^cuda_emu: //' || true)
  reports=$(grep -cE 'WARNING: ThreadSanitizer|ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|^cuda_emu: ' "$log" |
            tr -d ' ' || true)
  reports=$(( reports - $(grep -cE '^cuda_emu: [0-9]+ launches' "$log" || true) ))
  n_cuda=$(sed -E 's/^CUDA launchers: ([0-9]+) passed, ([0-9]+) failed/\1 \2/' <<<"$cuda_line")
  verdict=ok
  if (( rc != 0 )) || [[ -z $cuda_line ]] || [[ ${n_cuda% *} -eq 0 ]] || [[ ${n_cuda#* } -ne 0 ]] || (( reports > 0 )); then
    verdict=FAILED
    FAILED=1
    echo "---- $name: self-test log (exit code $rc), last 60 lines ----"
    tail -n 60 "$log"
    echo "---- end of $name log ----"
  fi
  SUMMARY[$name]="$(printf '%-5s %-6s build %3ds (%d objects compiled) run %3ds: %s%s; %s' "$name" "$verdict" \
    $((t1 - t0)) $(($(n_compiled) - c0)) $((t2 - t1)) "${cuda_line:-no CUDA result line}" "${cpu_line:+; $cpu_line}" \
    "${stats:-no emulator counters}")"
  say "${SUMMARY[$name]}"
done

# ---- negative controls --------------------------------------------------------------------------------------------------
CONTROL_LINES=()
if (( DO_CONTROLS )); then
  while IFS=$'\t' read -r cname cbuild cop cfile csig cwhy; do
    t0=$SECONDS
    ndir=$OUT/controls/$cname
    mkdir -p "$ndir"
    mutated=$(perl "$EMU/negative_controls.pl" make "$cname" "$KDIR" "$ndir/src") ||
      die "negative control $cname could not be generated (see above)" 1
    read -r -a fl <<<"${FLAGS[$cbuild]}"
    gen_cpp "$mutated" "$ndir/src/$cop.emu.cpp"  # next to the mutated headers, which it must include
    compile "$ndir/src/$cop.emu.cpp" "$ndir/$cop.o" "${COMMON[@]}" "${fl[@]}" -D__CUDA_ARCH__=900
    finish_compiles
    mapfile -t objs < <(objs_of "$cbuild" "$cop" "$ndir/$cop.o")
    link "$ndir/selftest" "${fl[@]}" -- "${objs[@]}"
    rc=0  # (GCOV_PREFIX: a control run must not add to the plain build's coverage counters)
    GCOV_PREFIX=$ndir/gcov-discard run_selftest "$cbuild" "$ndir/selftest" "$ndir/selftest.log" --cuda-only --op "$cop" ||
      rc=$?
    if (( rc != 0 )) && grep -qE "$csig" "$ndir/selftest.log"; then
      line="negative control $cname: rejected by $cbuild as expected ($(grep -m1 -oE "$csig.*" "$ndir/selftest.log" |
             cut -c1-120); exit code $rc; $((SECONDS - t0))s) - $cwhy"
    else
      FAILED=1
      line="negative control $cname: NOT rejected by $cbuild (exit code $rc, expected a report matching '$csig') - $cwhy"
      echo "---- $cname: log, last 40 lines ----"
      tail -n 40 "$ndir/selftest.log"
    fi
    say "$line"
    CONTROL_LINES+=("$line")
    if [[ $cname == missing_barrier ]]; then  # why the TSan build exists: show what the plain build makes of it
      gen_cpp "$mutated" "$ndir/src/$cop.emu-plain.cpp"
      read -r -a pfl <<<"${FLAGS[plain]}"
      compile "$ndir/src/$cop.emu-plain.cpp" "$ndir/$cop.plain.o" "${COMMON[@]}" "${pfl[@]}" -D__CUDA_ARCH__=900
      finish_compiles
      mapfile -t objs < <(objs_of plain "$cop" "$ndir/$cop.plain.o")
      link "$ndir/selftest-plain" "${pfl[@]}" -- "${objs[@]}"
      rc=0
      GCOV_PREFIX=$ndir/gcov-discard run_selftest plain "$ndir/selftest-plain" "$ndir/selftest-plain.log" \
        --cuda-only --op "$cop" || rc=$?
      say "  (for information: the plain build $( ((rc == 0)) && echo "passes this control: only TSan sees the race" ||
           echo "also rejects it, exit code $rc"))"
    fi
  done < <(perl "$EMU/negative_controls.pl" list)
fi

# ---- coverage of the kernel sources by the emulated CUDA run -----------------------------------------------------------
COVERAGE=""
if (( DO_COVERAGE )); then
  gcov_json=()
  for op in "${OPS[@]}"; do
    [[ -f $OUT/plain/$op.gcda ]] || die "no coverage data for $op (did the plain run finish?)" 1
    gcov_json+=("$(cd "$OUT/plain" && "$GCOV" --branch-probabilities --json-format --stdout -o "$OUT/plain" "$OUT/plain/gen/$op.cpp" 2>/dev/null)")
  done
  cov_rc=0
  COVERAGE=$(printf '%s\n' "${gcov_json[@]}" | perl "$EMU/coverage.pl" "$KDIR") || cov_rc=$?
  echo "$COVERAGE"
  if (( cov_rc != 0 )); then
    FAILED=1
    COVERAGE+=$'\ncoverage total: FAILED - a kernel line or instantiation never ran under emulation (listed above): '
    COVERAGE+="add a self-test case that reaches it (csrc/kernels/selftest.cpp)"
  fi
fi

# ---- summary ------------------------------------------------------------------------------------------------------------
echo "==== cuda_emu_check summary ($((SECONDS - T_START)) s; $(n_compiled) objects compiled, $(n_reused) reused; $JOBS compile jobs) ===="
for name in plain asan tsan; do echo "  ${SUMMARY[$name]}"; done
for line in "${CONTROL_LINES[@]+"${CONTROL_LINES[@]}"}"; do echo "  $line"; done
[[ -n $COVERAGE ]] && grep -E '^coverage (total|functions)' <<<"$COVERAGE" | sed 's/^/  /'
if (( FAILED )); then
  echo "cuda_emu_check: FAILED"
  exit 1
fi
echo "cuda_emu_check: OK"
