# MPI tests with real ranks: test_dist under mpirun -np 2 and 3, test_zero (ZeRO-1 in the optimizer) under
# -np 2, 3 and 4, test_grad_overlap (the gradient all-reduce overlapped with the backward) under -np 2 and 3
# (each alone is the world of one).
cispo_mpi_test(test_dist 120 "2;3")
# test_dist alone also launches itself under mpirun -np 3 (a failed command's end, dist_fail)
if(TARGET test_dist AND MPIEXEC_BIN)
  set_property(TEST test_dist APPEND PROPERTY ENVIRONMENT "CISPO_MPIEXEC=${MPIEXEC_BIN}"
    "OMPI_ALLOW_RUN_AS_ROOT=1" "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1" "OMPI_MCA_rmaps_base_oversubscribe=1")
endif()
cispo_mpi_test(test_zero 120 "2;3;4")
cispo_mpi_test(test_grad_overlap 300 "2;3")
# test_train_mpi launches `cispo train` itself, in one process and under mpirun -np 2 and 3
if(TARGET test_train_mpi)
  if(MPIEXEC_BIN)
    set_property(TEST test_train_mpi APPEND PROPERTY ENVIRONMENT "CISPO_MPIEXEC=${MPIEXEC_BIN}"
      "OMPI_ALLOW_RUN_AS_ROOT=1" "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1" "OMPI_MCA_rmaps_base_oversubscribe=1")
  endif()
  set_property(TEST test_train_mpi PROPERTY LABELS "cpu;mpi")
  if(CISPO_SANITIZE)
    set_property(TEST test_train_mpi APPEND PROPERTY ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")
  endif()
endif()
