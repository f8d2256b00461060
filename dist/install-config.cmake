# install-config.cmake: runs at install time (install(CODE) in CMakeLists.txt,
# component "config") to install the files that live under /etc: the
# example hpqd.conf and agent.conf as HPQ_CONFDIR/hpqd.conf and agent.conf,
# where the units read them, and the logrotate file. Each is installed only
# where none exists, so that installing again or upgrading never replaces
# what an admin edited (a package makes them conffiles instead). file(INSTALL)
# adds DESTDIR and records the files in install_manifest.txt.
function(hpq_install_once src dir name mode)
  if(EXISTS "$ENV{DESTDIR}${dir}/${name}")
    message(STATUS "Keeping: $ENV{DESTDIR}${dir}/${name}")
  else()
    file(INSTALL "${src}" DESTINATION "${dir}" RENAME "${name}" PERMISSIONS ${mode})
  endif()
endfunction()

hpq_install_once("${HPQ_DIST_SOURCE_DIR}/hpqd.conf" "${HPQ_DIST_CONFDIR}" hpqd.conf
                 "OWNER_READ;OWNER_WRITE;GROUP_READ;WORLD_READ")
hpq_install_once("${HPQ_DIST_SOURCE_DIR}/agent.conf" "${HPQ_DIST_CONFDIR}" agent.conf
                 "OWNER_READ;OWNER_WRITE;GROUP_READ;WORLD_READ")
hpq_install_once("${HPQ_DIST_SOURCE_DIR}/hpq.logrotate" "${HPQ_DIST_LOGROTATEDIR}" hpq
                 "OWNER_READ;OWNER_WRITE;GROUP_READ;WORLD_READ")
