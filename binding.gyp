{
  "targets": [
    {
      "target_name": "isolane_shm",
      "sources": ["native/isolane_shm.cc"],
      "cflags_cc": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-cast-function-type"]
    }
  ]
}
