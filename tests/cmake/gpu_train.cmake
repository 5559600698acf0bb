# tests/cmake/gpu_train.cmake — `cispo train device=cuda` end to end (label gpu; needs a GPU machine):
# a short demo run on the GPU, its checkpoint evaluated on the CPU and on the GPU (tests/gpu/train_gpu.sh);
# and `cispo generate` on the GPU against transformers (tests/gpu/hf_generate_gpu.py).
if(CISPO_HAVE_CUDA)
  add_test(NAME test_train_gpu COMMAND bash ${CMAKE_SOURCE_DIR}/tests/gpu/train_gpu.sh $<TARGET_FILE:cispo>
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(test_train_gpu PROPERTIES LABELS gpu TIMEOUT 900)
  # greedy `cispo generate --device cuda` against transformers' generate() in bf16 on bench-1b (needs torch and
  # transformers in the python3 of the GPU machine)
  add_test(NAME test_hf_generate_gpu COMMAND python3 ${CMAKE_SOURCE_DIR}/tests/gpu/hf_generate_gpu.py
           $<TARGET_FILE:cispo> configs/models/bench-1b.yaml cuda WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(test_hf_generate_gpu PROPERTIES LABELS gpu TIMEOUT 900)
endif()
