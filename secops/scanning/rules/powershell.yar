/*
 * PowerShell download cradles (fetch a script from the network and run it in memory)
 * and encoded command lines (-EncodedCommand and its accepted abbreviations).
 */
rule SECOPS_PowerShell_Download_Cradle
{
    meta:
        severity = "high"
        description = "PowerShell download cradle: downloads and runs code"
    strings:
        // All parts of a cradle must sit on one line: scattered words in a large
        // binary or a manual are not a cradle.
        $c1 = /new-object\s+(system\.)?net\.webclient[^\r\n]{0,200}\.download(string|data|file)\s*\(/ nocase
        $c2 = /\b(iex|invoke-expression)\b[^\r\n]{0,200}\.download(string|data)\s*\(/ nocase
        $c3 = /\b(iwr|irm|invoke-webrequest|invoke-restmethod)\b[^\r\n|]{1,300}\|\s*(iex|invoke-expression)\b/ nocase
        $c4 = /\.download(string|data)\s*\([^\r\n]{1,300}\|\s*(iex|invoke-expression)\b/ nocase
    condition:
        any of them
}

rule SECOPS_PowerShell_Encoded_Command
{
    meta:
        severity = "high"
        description = "PowerShell started with a base64-encoded command"
    strings:
        $enc = /powershell(\.exe)?["']?\s[^\r\n]{0,200}\s[-\/]e(c|n|nc|nco|ncod|ncode|ncoded|ncodedc|ncodedco|ncodedcom|ncodedcomm|ncodedcomma|ncodedcommand)?\s+["']?[A-Za-z0-9+\/]{24,}/ nocase
    condition:
        $enc
}
