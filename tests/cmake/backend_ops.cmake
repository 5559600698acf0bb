# test_backend_ops (tests/test_backend_ops.c, a ctest of the glob, label cpu) runs every op on every
# backend it can reach; without a GPU its CUDA rows print "skipped". In a CUDA build the same binary
# runs a second time as the GPU test: only the CUDA rows, failing when no device can run them.
if(CISPO_HAVE_CUDA AND TARGET test_backend_ops)
  add_test(NAME test_backend_ops_gpu COMMAND test_backend_ops --require-cuda --backend cuda
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(test_backend_ops_gpu PROPERTIES LABELS gpu TIMEOUT 1800)
endif()
