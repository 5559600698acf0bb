# tests/cmake/bench.cmake — benchmark programs (built, not run as tests): bench/model_bench.c times
# training steps of the whole model on a backend (bench/train_device.sh runs it beside the peer).
add_executable(model_bench ${CMAKE_SOURCE_DIR}/bench/model_bench.c)
target_link_libraries(model_bench PRIVATE cispo_trainer)
set_target_properties(model_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
# bench/generate_bench.c times the generation engine (bench/generate_device.sh runs it beside the peer).
add_executable(generate_bench ${CMAKE_SOURCE_DIR}/bench/generate_bench.c)
target_link_libraries(generate_bench PRIVATE cispo_trainer)
set_target_properties(generate_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
# bench/precision_bench.c: M1's fp32-vs-bf16 LM head finding (bench/precision_device.sh; docs/performance.md).
add_executable(precision_bench ${CMAKE_SOURCE_DIR}/bench/precision_bench.c)
target_link_libraries(precision_bench PRIVATE cispo_trainer)
set_target_properties(precision_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
