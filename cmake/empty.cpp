// libvidi.so is made of the layers' static libraries, linked whole (cmake/install.cmake).
