# tests/cmake/fuzz_math.cmake — libFuzzer target for the math checker (rl/math/), built only with
# -DCISPO_FUZZ=ON and clang as the C compiler:
#   CC=clang-14 cmake -S . -B build-fuzz -DCISPO_FUZZ=ON -DCISPO_CUDA=OFF && cmake --build build-fuzz --target fuzz_math
#   build-fuzz/fuzz_math -max_total_time=600 -timeout=2 build-fuzz/fuzz/corpus_math tests/fuzz/corpus_math
#   ctest --test-dir build-fuzz -R fuzz_math      (a 30-second regression run over the seed corpus)
if(CISPO_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  set(fuzz_math_flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1)
  file(GLOB fuzz_math_srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/rl/math/*.c)
  add_executable(fuzz_math ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_math.c ${fuzz_math_srcs} ${CMAKE_SOURCE_DIR}/base/common.c
                 ${CMAKE_SOURCE_DIR}/base/buf.c ${CMAKE_SOURCE_DIR}/base/rng.c)
  target_include_directories(fuzz_math PRIVATE ${CMAKE_SOURCE_DIR})
  target_compile_options(fuzz_math PRIVATE ${fuzz_math_flags})
  target_link_options(fuzz_math PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_math PRIVATE PkgConfig::PCRE2 PkgConfig::GMP PkgConfig::MPFR PkgConfig::UTF8PROC Threads::Threads m)
  # New inputs go to a scratch corpus in the build tree, never into the source tree. -timeout=2
  # turns any slow input (the checker's budget is milliseconds) into a reported hang.
  set(fuzz_math_work ${CMAKE_BINARY_DIR}/fuzz/corpus_math)
  file(MAKE_DIRECTORY ${fuzz_math_work})
  add_test(NAME fuzz_math_regression
           COMMAND fuzz_math -max_total_time=30 -timeout=2 -rss_limit_mb=2048 -max_len=8192
                   -artifact_prefix=${CMAKE_BINARY_DIR}/fuzz/
                   ${fuzz_math_work} ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus_math
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(fuzz_math_regression PROPERTIES LABELS fuzz TIMEOUT 120)
endif()
