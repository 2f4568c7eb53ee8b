// Preloaded with --require: better-sqlite3's native module fails to load, as after a Node
// upgrade without `npm rebuild` or an install made with --ignore-scripts.
const dlopen = process.dlopen;
process.dlopen = function (module, filename, ...rest) {
  if (/better_sqlite3\.node$/.test(filename)) {
    throw Object.assign(new Error(`${filename}: cannot open shared object file: No such file or directory`), { code: 'ERR_DLOPEN_FAILED' });
  }
  return dlopen.call(this, module, filename, ...rest);
};
