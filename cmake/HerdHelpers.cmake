# herd_library(NAME GLOBS <patterns...> DEPS <targets...>)
# A static library from the files matching GLOBS (relative to the current
# folder), excluding *_main.cpp (executables' mains). With no sources yet it
# is an INTERFACE library, so a folder can exist before its first file.
function(herd_library NAME)
  cmake_parse_arguments(A "" "" "GLOBS;DEPS" ${ARGN})
  set(srcs)
  foreach(g ${A_GLOBS})
    file(GLOB found CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${g})
    list(APPEND srcs ${found})
  endforeach()
  list(FILTER srcs EXCLUDE REGEX "_main\\.cpp$")
  if(srcs)
    add_library(${NAME} STATIC ${srcs})
    target_link_libraries(${NAME} PUBLIC ${A_DEPS})
  else()
    add_library(${NAME} INTERFACE)
    target_link_libraries(${NAME} INTERFACE ${A_DEPS})
  endif()
endfunction()

# herd_test_dir(DIR DEPS <targets...>)
# One GoogleTest executable per test folder from its *_test.cpp files,
# registered with ctest through gtest_discover_tests.
function(herd_test_dir DIR)
  cmake_parse_arguments(A "" "" "DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${DIR}/*_test.cpp)
  if(NOT srcs)
    return()
  endif()
  string(REPLACE "/" "_" tname "herd_${DIR}_tests")
  add_executable(${tname} ${srcs})
  target_link_libraries(${tname} PRIVATE ${A_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_definitions(${tname} PRIVATE
    HERD_SOURCE_DIR="${CMAKE_SOURCE_DIR}" HERD_BINARY_DIR="${CMAKE_BINARY_DIR}")
  gtest_discover_tests(${tname} DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS "${DIR}" ENVIRONMENT "OPENBLAS_NUM_THREADS=2")
endfunction()
