# The layers' boundaries, checked on the sources (cmake -DSRC=<src dir> -P boundaries.cmake):
# - the CLI and the server (src/app) include only the public API (vidi/...) and app code;
# - runtime and app name no model: no decoder or tower class, chat marker or tensor name
#   (those belong to a model family under src/model/).
set(problems "")
file(GLOB_RECURSE app_files ${SRC}/app/*.cpp ${SRC}/app/*.h)
foreach(f ${app_files})
  file(STRINGS ${f} includes REGEX "^#include \"")
  foreach(line ${includes})
    if(NOT line MATCHES "^#include \"(vidi|app)/")
      string(APPEND problems "\n  ${f}: ${line}")
    endif()
  endforeach()
endforeach()
file(GLOB_RECURSE speaking ${SRC}/app/*.cpp ${SRC}/app/*.h ${SRC}/runtime/*.cpp ${SRC}/runtime/*.h)
foreach(f ${speaking})
  file(STRINGS ${f} hits REGEX "Gemma2|MediaEncoder|end_of_turn|model\\.layers|mm_rand")
  foreach(line ${hits})
    string(APPEND problems "\n  ${f}: ${line}")
  endforeach()
endforeach()
if(problems)
  message(FATAL_ERROR "layer boundaries crossed:${problems}")
endif()
