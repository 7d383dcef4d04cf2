# The layering check (cmake -P; run by the build, see CMakeLists.txt).
# Every folder is one library that links only the layers below it.  The
# include path is the project root for all of them, so nothing but this check
# stops a file from including a header of a layer above its own: it reads the
# `#include "folder/file.h"` lines of every source and header and fails, naming
# file, line and the folders allowed there, when one points elsewhere.
#   DP_ROOT       project root
#   DP_LAYER_MAP  "|folder=allowed,allowed|..." as CMakeLists.txt builds it
#   DP_STAMP      file touched when everything is in order
cmake_minimum_required(VERSION 3.20)
string(REPLACE "|" ";" entries "${DP_LAYER_MAP}")
set(folders "")
foreach(entry ${entries})
  if(entry MATCHES "^([^=]+)=(.*)$")
    set(folder ${CMAKE_MATCH_1})
    string(REPLACE "," ";" allowed_${folder} "${CMAKE_MATCH_2}")
    list(APPEND folders ${folder})
  endif()
endforeach()
set(errors "")
foreach(folder ${folders})
  file(GLOB files ${DP_ROOT}/${folder}/*.h ${DP_ROOT}/${folder}/*.cc)
  foreach(path ${files})
    file(STRINGS ${path} lines REGEX "^#include \"")
    foreach(line ${lines})
      if(line MATCHES "^#include \"(.+)/[^/]+\"")
        set(target ${CMAKE_MATCH_1})
        if(NOT target IN_LIST folders)
          continue()  # not one of ours (a system or test header)
        endif()
        if(NOT target IN_LIST allowed_${folder})
          file(RELATIVE_PATH rel ${DP_ROOT} ${path})
          string(REPLACE ";" ", " allowed_text "${allowed_${folder}}")
          string(APPEND errors "  ${rel}: ${line}\n    ${folder}/ may include only from: ${allowed_text}\n")
        endif()
      endif()
    endforeach()
  endforeach()
endforeach()
if(errors)
  message(FATAL_ERROR "layering: includes that point up or sideways "
                      "(fix the include, or the DEPS in CMakeLists.txt):\n${errors}")
endif()
file(TOUCH ${DP_STAMP})
