# Expert parallelism with real ranks: test_ep under mpirun -np 2, 3 and 4 (every grid ep x dp of the world
# against one process; alone it is the world of one).
cispo_mpi_test(test_ep 300 "2;3;4")
# test_ep_train launches `cispo train` itself under mpirun (1 to 6 ranks)
if(TARGET test_ep_train)
  if(MPIEXEC_BIN)
    set_property(TEST test_ep_train APPEND PROPERTY ENVIRONMENT "CISPO_MPIEXEC=${MPIEXEC_BIN}"
      "OMPI_ALLOW_RUN_AS_ROOT=1" "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1" "OMPI_MCA_rmaps_base_oversubscribe=1")
  endif()
  set_property(TEST test_ep_train PROPERTY LABELS "cpu;mpi")
  if(CISPO_SANITIZE)
    set_property(TEST test_ep_train APPEND PROPERTY ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")
  endif()
endif()
