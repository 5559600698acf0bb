# Expert parallelism with real ranks: test_ep under mpirun -np 2, 3 and 4 (every grid ep x dp of the world
# against one process; alone it is the world of one).
find_program(MPIEXEC_BIN NAMES mpirun mpiexec)
if(MPIEXEC_BIN AND TARGET test_ep)
  foreach(np 2 3 4)
    add_test(NAME test_ep_np${np}
             COMMAND ${MPIEXEC_BIN} --oversubscribe -np ${np} $<TARGET_FILE:test_ep>
             WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    # root in CI containers; Open MPI refuses root unless told
    set_tests_properties(test_ep_np${np} PROPERTIES LABELS "cpu;mpi" TIMEOUT 300
      ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1;CISPO_SRC=${CMAKE_SOURCE_DIR}")
  endforeach()
endif()
if(TARGET test_ep)
  set_property(TEST test_ep PROPERTY LABELS "cpu;mpi")
endif()
# Open MPI keeps allocations in dlopen'ed plugins until exit, which LeakSanitizer cannot attribute (see
# mpi.cmake): leak checking is off for these tests of a sanitizer build; address and UB checks stay on.
if(CISPO_SANITIZE AND TARGET test_ep)
  set_property(TEST test_ep APPEND PROPERTY ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")
  if(MPIEXEC_BIN)
    foreach(np 2 3 4)
      set_property(TEST test_ep_np${np} APPEND PROPERTY ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")
    endforeach()
  endif()
endif()
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
