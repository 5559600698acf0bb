# test_backend_ops (tests/test_backend_ops.c, a ctest of the glob, label cpu) runs every op on every
# backend it can reach; without a GPU its CUDA rows print "skipped". In a CUDA build the same binary
# runs a second time as the GPU test: only the CUDA rows, failing when no device can run them; and a third
# time as test_backend_ops_gpu_forms: the expert products' rows under CISPO_WG_PERSIST=0, the attention
# backward's under CISPO_ATTN_DQ_TILED=0 and the forward's under CISPO_ATTN_FWD_FOLD=0; and a fourth time as
# test_backend_ops_gpu_forms_qreg: the attention forward's rows with Q's tile read from shared memory by every
# score product (CISPO_ATTN_FWD_QREG=0) rather than held in registers; and a fifth as
# test_backend_ops_gpu_forms_cluster: the expert products' rows in clusters of two CTAs sharing the 256-column
# operand by TMA multicast (CISPO_WG_CLUSTER=1, off by default).
if(CISPO_HAVE_CUDA AND TARGET test_backend_ops)
  add_test(NAME test_backend_ops_gpu COMMAND test_backend_ops --require-cuda --backend cuda
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(test_backend_ops_gpu PROPERTIES LABELS gpu TIMEOUT 1800)
  # The expert products' forms of a CTA a tile (wgt_forward, wgt_wgrad, with and without their TMA epilogues),
  # which the defaults take only where a tile can leave by the threads alone: the same rows, forced there; and
  # the attention backward with dQ's fp32 buffer in rows [T, H, D] rather than the default's blocks; and the
  # attention forward with each score scaled before its maximum rather than the scale folded into exp2's argument.
  add_test(NAME test_backend_ops_gpu_forms COMMAND test_backend_ops --require-cuda --backend cuda
           --op grouped_matmul,grouped_matmul_pair,grouped_matmul_wgrad,attention_backward,attention_forward
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(test_backend_ops_gpu_forms PROPERTIES LABELS gpu TIMEOUT 600
                       ENVIRONMENT "CISPO_WG_PERSIST=0;CISPO_ATTN_DQ_TILED=0;CISPO_ATTN_FWD_FOLD=0")
  add_test(NAME test_backend_ops_gpu_forms_qreg COMMAND test_backend_ops --require-cuda --backend cuda
           --op attention_forward WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(test_backend_ops_gpu_forms_qreg PROPERTIES LABELS gpu TIMEOUT 300
                       ENVIRONMENT "CISPO_ATTN_FWD_QREG=0")
  add_test(NAME test_backend_ops_gpu_forms_cluster COMMAND test_backend_ops --require-cuda --backend cuda
           --op grouped_matmul,grouped_matmul_pair,grouped_matmul_wgrad WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(test_backend_ops_gpu_forms_cluster PROPERTIES LABELS gpu TIMEOUT 300
                       ENVIRONMENT "CISPO_WG_CLUSTER=1")
endif()
