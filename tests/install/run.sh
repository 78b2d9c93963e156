#!/usr/bin/env bash
# ctest install.find_package: installs BUILD_DIR into a temporary prefix, then configures, builds
# and runs tests/install/consumer, a project that only knows find_package(async_kv).
#
#   tests/install/run.sh SOURCE_DIR BUILD_DIR
#
# The consumer is built with the compiler (and sanitizers) of BUILD_DIR, through the launcher in
# $CMAKE_CXX_COMPILER_LAUNCHER (ccache) when that is set.
set -euo pipefail

if (($# != 2)); then
    echo "usage: $0 SOURCE_DIR BUILD_DIR" >&2
    exit 2
fi
source_dir=$(cd "$1" && pwd)
build_dir=$(cd "$2" && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/akv-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$build_dir/CMakeCache.txt" | head -n 1; }

cmake --install "$build_dir" --prefix "$tmp/prefix"

# The bundled binaries, the browser client and the sample configurations, when built.
datadir=$tmp/prefix/share # GNUInstallDirs' default, which the build does not change
for f in js/akv.js js/akv.mjs; do
    if [[ ! -f "$datadir/async_kv/$f" ]]; then
        echo "install test: $datadir/async_kv/$f was not installed" >&2
        exit 1
    fi
done
if [[ "$(cache_value AKV_BUILD_APPS)" == ON ]]; then
    for b in akv akv-demo akv-gateway akv-worker akv-batcher; do
        if [[ ! -x "$tmp/prefix/bin/$b" ]]; then
            echo "install test: bin/$b was not installed" >&2
            exit 1
        fi
    done
    for f in akv-gateway.json akv-worker.json akv-batcher.json akv-demo.json \
        systemd/akv-gateway.service systemd/akv-worker@.service systemd/akv-batcher.service \
        prometheus.yml grafana/akv-dashboard.json; do
        if [[ ! -f "$datadir/async_kv/config/$f" ]]; then
            echo "install test: share/async_kv/config/$f was not installed" >&2
            exit 1
        fi
    done
    # The installed binaries run from there and read the installed samples.
    "$tmp/prefix/bin/akv-worker" --config "$datadir/async_kv/config/akv-worker.json" --help >/dev/null
    "$tmp/prefix/bin/akv-demo" --help >/dev/null
fi

args=(-S "$source_dir/tests/install/consumer" -B "$tmp/build"
      -DCMAKE_PREFIX_PATH="$tmp/prefix"
      -DCMAKE_BUILD_TYPE="$(cache_value CMAKE_BUILD_TYPE)")
if command -v ninja >/dev/null 2>&1; then
    args+=(-G Ninja)
fi
compiler=$(cache_value CMAKE_CXX_COMPILER)
if [[ -n "$compiler" ]]; then
    args+=(-DCMAKE_CXX_COMPILER="$compiler")
fi
# ctest passes the variable even when the build has no launcher; empty means none.
if [[ -n "${CMAKE_CXX_COMPILER_LAUNCHER:-}" ]]; then
    args+=(-DCMAKE_CXX_COMPILER_LAUNCHER="$CMAKE_CXX_COMPILER_LAUNCHER")
fi
unset CMAKE_CXX_COMPILER_LAUNCHER
# A sanitized library only links into a sanitized program; the flags are not part of the package.
sanitize=
if [[ "$(cache_value AKV_SANITIZE)" == ON ]]; then
    sanitize=-fsanitize=address,undefined
elif [[ "$(cache_value AKV_TSAN)" == ON ]]; then
    sanitize=-fsanitize=thread
fi
if [[ -n "$sanitize" ]]; then
    args+=(-DCMAKE_CXX_FLAGS="$sanitize" -DCMAKE_EXE_LINKER_FLAGS="$sanitize")
fi

# The README's example goes into the consumer project as it stands in README.md.
mkdir -p "$tmp/build"
sed -n '/^```cpp$/,/^```$/p' "$source_dir/README.md" | sed '1d;$d' >"$tmp/build/readme_example.cpp"
sed -n '/^```cpp task_queue$/,/^```$/p' "$source_dir/README.md" | sed '1d;$d' \
    >"$tmp/build/readme_queue_example.cpp"
if [[ ! -s "$tmp/build/readme_example.cpp" ]]; then
    echo "install test: no \`\`\`cpp example found in README.md" >&2
    exit 1
fi

cmake "${args[@]}"

# The package must come from the prefix we just installed, not from some other install.
found=$(sed -n 's/^async_kv_DIR:[A-Z]*=//p' "$tmp/build/CMakeCache.txt")
if [[ "$found" != "$tmp/prefix/"* ]]; then
    echo "install test: async_kv found in '$found', not under $tmp/prefix" >&2
    exit 1
fi

cmake --build "$tmp/build"

output=$("$tmp/build/consumer")
echo "$output"
if [[ "$output" != "consumer ok" ]]; then
    echo "install test: the consumer printed '$output', expected 'consumer ok'" >&2
    exit 1
fi

readme=$("$tmp/build/readme_example")
echo "readme example: $readme"
if [[ "$readme" != "hello #1" ]]; then
    echo "install test: the README example printed '$readme', expected 'hello #1'" >&2
    exit 1
fi

# akv::ml_torch is installed and exported with the library when the build had libtorch.
if [[ -f "$tmp/prefix/include/akv/ml/torch_model.hpp" ]]; then
    torch=$("$tmp/build/torch_consumer")
    echo "$torch"
    if [[ "$torch" != "torch consumer ok" ]]; then
        echo "install test: the torch consumer printed '$torch', expected 'torch consumer ok'" >&2
        exit 1
    fi
fi

queue=$(timeout 60 "$tmp/build/readme_queue_example")
echo "readme queue example: $queue"
if [[ "$queue" != "sent to a@b.c" ]]; then
    echo "install test: the README queue example printed '$queue', expected 'sent to a@b.c'" >&2
    exit 1
fi
