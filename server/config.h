/* config.h — `vtl-server --config FILE`: the same settings as the flags,
 * from a JSON object, for services and containers:
 *
 *   { "listen": "0.0.0.0:8080", "data": "/var/lib/vtl",
 *     "cert": "/etc/vtl/cert.pem", "key": "/etc/vtl/key.pem",
 *     "origin": ["https://films.example.org"], "web": "/usr/share/vtl/web",
 *     "demo": false, "snapshot-every": 1000 }
 *
 * Keys are the long flag names without "--"; a string or number is the
 * flag's value, true adds a switch (false leaves it out), an array repeats
 * the flag. Flags given on the command line come after the file's and so
 * override them (--origin adds to the file's). A demo service adds
 * "demo": true, "demo-timeline": "/usr/share/vtl/demo.vtl.json"; a render
 * service "render": true, "model-root": "/var/lib/vtl/models". */
#ifndef VTL_SERVER_CONFIG_H
#define VTL_SERVER_CONFIG_H

/* Replaces *argv by argv with `--config FILE` expanded in place. Returns 0
 * (also when there is no --config), or 2 after printing what is wrong with
 * the file (unreadable, not an object, unknown key, wrong type). The new
 * vector and its strings live until exit. */
int vtl_config_expand(int *argc, char ***argv);

#endif /* VTL_SERVER_CONFIG_H */
