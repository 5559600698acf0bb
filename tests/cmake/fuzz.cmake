# tests/cmake/fuzz.cmake — libFuzzer targets, built only with -DCISPO_FUZZ=ON and clang as the C compiler:
#   CC=clang-14 cmake -S . -B build-fuzz -DCISPO_FUZZ=ON -DCISPO_CUDA=OFF && cmake --build build-fuzz --target fuzz_safetensors
#   ctest --test-dir build-fuzz -L fuzz        (a 20-second run over the seed corpus)
# Each target compiles the sources it exercises directly, instrumented for coverage and ASan/UBSan.
if(CISPO_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(WARNING "CISPO_FUZZ=ON needs clang as the C compiler (e.g. CC=clang-14); fuzz targets are not built")
  else()
    set(fuzz_flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1)

    # safetensors header parser (model/safetensors.c) and fp32 conversion
    add_executable(fuzz_safetensors ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_safetensors.c
                   ${CMAKE_SOURCE_DIR}/model/safetensors.c ${CMAKE_SOURCE_DIR}/base/common.c
                   ${CMAKE_SOURCE_DIR}/base/buf.c)
    target_include_directories(fuzz_safetensors PRIVATE ${CMAKE_SOURCE_DIR})
    target_compile_options(fuzz_safetensors PRIVATE ${fuzz_flags})
    target_link_options(fuzz_safetensors PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(fuzz_safetensors PRIVATE PkgConfig::CJSON m)
    # Regression run: the seed corpus plus 20 s of mutation. New inputs go to a scratch corpus in the
    # build tree, never into the source tree.
    set(fuzz_work ${CMAKE_BINARY_DIR}/fuzz/corpus_safetensors)
    file(MAKE_DIRECTORY ${fuzz_work})
    add_test(NAME fuzz_safetensors_regression
             COMMAND fuzz_safetensors -max_total_time=20 -timeout=10 -rss_limit_mb=2048
                     -dict=${CMAKE_SOURCE_DIR}/tests/fuzz/safetensors.dict
                     -artifact_prefix=${CMAKE_BINARY_DIR}/fuzz/
                     ${fuzz_work} ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus_safetensors
             WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(fuzz_safetensors_regression PROPERTIES LABELS fuzz TIMEOUT 120)
  endif()
endif()
