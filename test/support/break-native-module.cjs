// Preloaded with --require: the native module named by $BREAK_NATIVE_MODULE (e.g.
// better_sqlite3.node) fails to load, as after a Node upgrade without `npm rebuild` or an
// install made with --ignore-scripts.
const broken = process.env.BREAK_NATIVE_MODULE;
const dlopen = process.dlopen;
process.dlopen = function (module, filename, ...rest) {
  if (broken && filename.endsWith(`/${broken}`)) {
    throw Object.assign(new Error(`${filename}: cannot open shared object file: No such file or directory`), { code: 'ERR_DLOPEN_FAILED' });
  }
  return dlopen.call(this, module, filename, ...rest);
};
