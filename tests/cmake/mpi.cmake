# MPI tests with real ranks: test_dist under mpirun -np 2 and 3 (test_dist alone is the world of one).
find_program(MPIEXEC_BIN NAMES mpirun mpiexec)
if(MPIEXEC_BIN AND TARGET test_dist)
  foreach(np 2 3)
    add_test(NAME test_dist_np${np}
             COMMAND ${MPIEXEC_BIN} --oversubscribe -np ${np} $<TARGET_FILE:test_dist>
             WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    # root in CI containers; Open MPI refuses root unless told
    set_tests_properties(test_dist_np${np} PROPERTIES LABELS "cpu;mpi" TIMEOUT 120
      ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1")
  endforeach()
endif()
