# tests/cmake/lint.cmake — repository checks, one ctest each (label cpu): every scripts/check_*.sh
# (the include rule between folders, docs cited by the code, `defines:` headers naming live symbols).
file(GLOB lint_scripts CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/scripts/check_*.sh)
foreach(script ${lint_scripts})
  get_filename_component(name ${script} NAME_WE)
  add_test(NAME lint_${name} COMMAND bash ${script} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(lint_${name} PROPERTIES LABELS cpu TIMEOUT 120)
endforeach()
