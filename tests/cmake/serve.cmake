# tests/cmake/serve.cmake — `cispo serve` (trainer/serve*.c) against the `openai` Python client and curl:
# completions, chat, streaming, stop strings, n, logprobs, errors and a load test of 64 concurrent chat
# requests on the CPU engine (tests/serve/test_serve.py, run with the venv of tests/requirements.txt
# that scripts/test.sh exports as CISPO_PYTHON).
add_test(NAME test_serve
         COMMAND sh -c "exec \"\${CISPO_PYTHON:-python3}\" tests/serve/test_serve.py"
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_serve PROPERTIES LABELS cpu TIMEOUT 300
                     ENVIRONMENT "CISPO_BIN=$<TARGET_FILE:cispo>;CISPO_SRC=${CMAKE_SOURCE_DIR}")
