# tests/cmake/gpu_train.cmake — `cispo train device=cuda` end to end (label gpu; needs a GPU machine):
# a short demo run on the GPU, its checkpoint evaluated on the CPU and on the GPU (tests/gpu/train_gpu.sh).
if(CISPO_HAVE_CUDA)
  add_test(NAME test_train_gpu COMMAND bash ${CMAKE_SOURCE_DIR}/tests/gpu/train_gpu.sh $<TARGET_FILE:cispo>
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(test_train_gpu PROPERTIES LABELS gpu TIMEOUT 900)
endif()
