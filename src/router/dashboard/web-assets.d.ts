// The dashboard's browser files are imported as text (with { type: "text" }): to TypeScript, strings.
declare module "*.css" {
  const text: string;
  export default text;
}
declare module "*.js" {
  const text: string;
  export default text;
}
