# tests/cmake/tokenizer.cmake — tokenizer parity with the `tokenizers` package: tests/test_tokenizer.py
# trains tokenizers and reads the committed ones of tests/tokenizer/, then compares `cispo tokenize` ids
# and decodes with the package's. Runs with
# $CISPO_PYTHON (the venv scripts/test.sh makes from tests/requirements.txt), python3 otherwise.
add_test(NAME test_tokenizer
         COMMAND sh -c "exec \"\${CISPO_PYTHON:-python3}\" tests/test_tokenizer.py"
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_tokenizer PROPERTIES LABELS cpu TIMEOUT 600
                     ENVIRONMENT "CISPO_BIN=$<TARGET_FILE:cispo>;CISPO_SRC=${CMAKE_SOURCE_DIR}")

# Exports are complete model directories: tests/parity/check_export.py --files converts each parity
# fixture with a tokenizer built for its vocabulary and checks the exported tokenizer files, chat
# template and special-token ids with `tokenizers` and json (no torch in the test venv). Loading the
# export in transformers and greedy generate() against `cispo generate` run without --files, where
# torch and transformers are installed (the machine that writes the parity fixtures).
add_test(NAME test_export_files
         COMMAND sh -c "exec \"\${CISPO_PYTHON:-python3}\" tests/parity/check_export.py --files \"$<TARGET_FILE:cispo>\""
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(test_export_files PROPERTIES LABELS cpu TIMEOUT 300)
