# tests/cmake/sandbox.cmake — sandbox tests beyond the C programs (tests/test_sandbox*.c are
# picked up automatically): the HTTP service against curl, the sandbox-fusion client package and
# bad requests (tests/sandbox/test_server.py, run with the venv of tests/requirements.txt that
# scripts/test.sh exports as CISPO_PYTHON).
add_test(NAME test_sandbox_server
         COMMAND sh -c "exec \"\${CISPO_PYTHON:-python3}\" tests/sandbox/test_server.py"
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_sandbox_server PROPERTIES LABELS cpu TIMEOUT 600
                     ENVIRONMENT "CISPO_BIN=$<TARGET_FILE:cispo>;CISPO_SRC=${CMAKE_SOURCE_DIR}")

# cgroup v2: the runner's tests and the attacks that meet the memory, pids and cpu controllers, in
# a virtual machine whose only hierarchy is cgroup2 (tests/sandbox/cgroup2_vm.sh: this host's v1
# or hybrid hierarchies keep those controllers from any v2 mount here). Emulated, so a few minutes.
# Not in the sanitizer build: it exercises the kernel's side, and the same tests run on the host
# under the sanitizers.
if(NOT CISPO_SANITIZE)
  add_test(NAME test_sandbox_cgroup2 COMMAND tests/sandbox/cgroup2_vm.sh ${CMAKE_BINARY_DIR}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(test_sandbox_cgroup2 PROPERTIES LABELS "cpu;vm" TIMEOUT 1500 RUN_SERIAL TRUE)
endif()

# The throughput/overhead benchmark (not a test: numbers, no assertions on time).
add_executable(sandbox_bench ${CMAKE_SOURCE_DIR}/bench/sandbox_bench.c)
target_link_libraries(sandbox_bench PRIVATE cispo_sandbox)
set_target_properties(sandbox_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})

# These count the processes the sandbox's host uids own: alone, so that jails of other tests
# running at the same time are not taken for survivors (and, for the runner's CPU isolation check,
# so that no other test shares the cores with it).
set_tests_properties(test_sandbox_attacks test_sandbox_runner PROPERTIES RUN_SERIAL TRUE)
