// trainer/paths.h — where the files a command names are: a path inside a config file is relative to the
// config file's directory, a path on the command line to the working directory, and a model preset name
// (tiny, bench-1b, minimax-m1) is configs/models/NAME.yaml of the source tree or of the install
// (PREFIX/share/cispo). A bare word that names no file (arithmetic, auto, tiny) is a name, not a path.
// defines: paths_resolve, paths_find_root, paths_model_spec, paths_is_preset
#ifndef CISPO_TRAINER_PATHS_H
#define CISPO_TRAINER_PATHS_H

#include <stddef.h>

// value made absolute against base_dir (NULL: the working directory): an absolute value, an empty one
// and a bare word (no '/' or '.') that names nothing under base_dir are kept as they are. 0 or -1 +
// message (too long).
int paths_resolve(const char *value, const char *base_dir, char *out, size_t cap);
// The directory holding configs/demo.yaml: $CISPO_SRC, else up to three levels above the binary
// (build/cispo in the source tree, or PREFIX/bin/cispo beside PREFIX/share/cispo), else the working
// directory. 0 or -1 + message.
int paths_find_root(char *root, size_t cap);
// A model spec as every command takes it: a file or directory that exists is kept; a preset name
// becomes ROOT/configs/models/NAME.yaml; anything else is kept (its loader names the problem).
void paths_model_spec(const char *spec, char *out, size_t cap);
// spec (after paths_model_spec) is a model config (.yaml preset or config.json): random weights.
int paths_is_preset(const char *spec);

#endif
