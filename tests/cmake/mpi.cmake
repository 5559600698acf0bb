# MPI tests with real ranks: test_dist under mpirun -np 2 and 3, test_zero (ZeRO-1 in the optimizer) under
# -np 2, 3 and 4, test_grad_overlap (the gradient all-reduce overlapped with the backward) under -np 2 and 3
# (each alone is the world of one).
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
if(MPIEXEC_BIN AND TARGET test_zero)
  foreach(np 2 3 4)
    add_test(NAME test_zero_np${np}
             COMMAND ${MPIEXEC_BIN} --oversubscribe -np ${np} $<TARGET_FILE:test_zero>
             WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(test_zero_np${np} PROPERTIES LABELS "cpu;mpi" TIMEOUT 120
      ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1")
  endforeach()
endif()
if(MPIEXEC_BIN AND TARGET test_grad_overlap)
  foreach(np 2 3)
    add_test(NAME test_grad_overlap_np${np}
             COMMAND ${MPIEXEC_BIN} --oversubscribe -np ${np} $<TARGET_FILE:test_grad_overlap>
             WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(test_grad_overlap_np${np} PROPERTIES LABELS "cpu;mpi" TIMEOUT 300
      ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1;CISPO_SRC=${CMAKE_SOURCE_DIR}")
  endforeach()
endif()
if(TARGET test_grad_overlap)
  set_property(TEST test_grad_overlap PROPERTY LABELS "cpu;mpi")
  if(CISPO_SANITIZE)
    set_property(TEST test_grad_overlap APPEND PROPERTY ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")
    if(MPIEXEC_BIN)
      foreach(np 2 3)
        set_property(TEST test_grad_overlap_np${np} APPEND PROPERTY ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")
      endforeach()
    endif()
  endif()
endif()
# Open MPI keeps allocations in dlopen'ed plugins until exit, which LeakSanitizer cannot attribute or
# suppress by library name: leak checking is off for the MPI tests of a sanitizer build (address and
# undefined-behaviour checks stay on).
if(CISPO_SANITIZE AND TARGET test_dist)
  set_property(TEST test_dist APPEND PROPERTY ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")
  foreach(np 2 3)
    set_property(TEST test_dist_np${np} APPEND PROPERTY ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")
  endforeach()
endif()
if(CISPO_SANITIZE AND TARGET test_zero)
  set_property(TEST test_zero APPEND PROPERTY ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")
  if(MPIEXEC_BIN)
    foreach(np 2 3 4)
      set_property(TEST test_zero_np${np} APPEND PROPERTY ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")
    endforeach()
  endif()
endif()
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
