#!/usr/bin/env bash
# Fuzzes the upload decode path (SafeImageDecoder + preprocessing) with AFL++ and SharpFuzz for a fixed budget.
# Usage: fuzz/run.sh [seconds=600]. Needs Debian's afl++ and the SharpFuzz.CommandLine dotnet tool (installed here).
# Findings (crashes, hangs) are copied to tests/Model.Tests/FuzzRegressions/, which Model.Tests replays.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-600}
out=artifacts/fuzz
rm -rf "$out/bin" && mkdir -p "$out"
dotnet publish fuzz/DecodeFuzz -c Release -o "$out/bin" --nologo -v q
command -v sharpfuzz >/dev/null || dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0
export PATH="$PATH:$HOME/.dotnet/tools"
# Seeds: small valid images of every accepted format (made before instrumenting: instrumented code needs AFL's
# shared memory and crashes outside afl-fuzz).
rm -rf "$out/seeds" && mkdir -p "$out/seeds"
dotnet "$out/bin/DecodeFuzz.dll" --make-seeds "$out/seeds"
# Plus fuzz/corpus/: progressive JPEGs (cjpeg), lossless WebPs (cwebp; one with 2 Huffman groups, one written by
# hand with 4), a lossy WebP with a lossless ALPH chunk, and a 40-scan JPEG the pre-scan refuses (fuzz/corpus/README.md).
cp fuzz/corpus/*.jpg fuzz/corpus/*.webp "$out/seeds/"
# Coverage comes from the decoder library; our wrapper runs before Fuzzer.Run sets up AFL's map, so it stays plain.
sharpfuzz "$out/bin/SixLabors.ImageSharp.dll"
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CPUFREQ=1
rm -rf "$out/findings"
timeout $((budget + 60)) afl-fuzz -V "$budget" -i "$out/seeds" -o "$out/findings" -t 2000 -m none -- dotnet "$out/bin/DecodeFuzz.dll" || true
mkdir -p tests/Model.Tests/FuzzRegressions
for kind in crashes hangs; do
  for f in "$out"/findings/default/$kind/id*; do
    [ -e "$f" ] || continue
    cp "$f" "tests/Model.Tests/FuzzRegressions/$kind-$(sha1sum "$f" | cut -c1-12).bin"
  done
done
cat "$out/findings/default/fuzzer_stats" | grep -E "run_time|execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs|bitmap_cvg" || true
