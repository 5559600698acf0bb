# tests/cmake/tokenizer.cmake — tokenizer parity with the `tokenizers` package: tests/test_tokenizer.py
# trains tokenizers and reads the committed ones of tests/tokenizer/, then compares `cispo tokenize` ids
# and decodes with the package's. Runs with
# $CISPO_PYTHON (the venv scripts/test.sh makes from tests/requirements.txt), python3 otherwise.
add_test(NAME test_tokenizer
         COMMAND sh -c "exec \"\${CISPO_PYTHON:-python3}\" tests/test_tokenizer.py"
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_tokenizer PROPERTIES LABELS cpu TIMEOUT 600
                     ENVIRONMENT "CISPO_BIN=$<TARGET_FILE:cispo>;CISPO_SRC=${CMAKE_SOURCE_DIR}")
