// Settings from the environment (`k6 run -e NAME=value`), shared by the
// k6 scripts: a value or its fallback, and a positive whole number.
export const env = (name, fallback) => (__ENV[name] === undefined || __ENV[name] === '' ? fallback : __ENV[name]);
export const positiveInt = (name, fallback) => {
  const value = Number(env(name, fallback));
  if (!Number.isInteger(value) || value <= 0) {
    throw new Error(`${name}=${__ENV[name]}: must be a positive integer`);
  }
  return value;
};
