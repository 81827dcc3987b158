// A .proto imported `with { type: "text" }` is its text (Bun's text loader).
declare module "*.proto" {
  const text: string;
  export default text;
}
