"""Reference data of the ninth database migration: every seeded code in both languages.

FROZEN, like seed_0001 and seed_0002: imported by migration 0009. Literals only, no logic.

Until 0009 a code carried `name` in Indonesian and, for some kinds, `description` in English.
This module gives every code seeded by 0001 and 0002 its English name (`name_en`) and its
Indonesian description (`description_id`), and an English `description` to the codes that had
none (their `description` was NULL; a description already stored is left as it is).

Terms follow the sources of seed_0001: Permensos 7/2021 on ATENSI (Asistensi Rehabilitasi
Sosial), Kemensos' 12 Pemerlu Atensi Sosial (12-PAS), UU 31/2014 on witness and victim
protection (LPSK), UU 21/2007 (TPPO), UU 12/2022 (TPKS), UU 23/2004 (PKDRT), UU 26/2000 (HAM
berat), UU 7/2012 (konflik sosial) and UU 27/2022 (UU PDP). Proper names (a Sentra, an office)
stay as they are in `name_en`; the English text says what the unit is.
"""

# English names of the agencies.
AGENCY_NAMES_EN = {
    "KEMENSOS": "Ministry of Social Affairs",
    "LPSK": "Witness and Victim Protection Agency",
    "KEMENHAM": "Ministry of Human Rights",
}

# kind -> code -> {"name_en", "description_id", and "description" where 0001 left it NULL}.
TERMS: dict[str, dict[str, dict[str, str]]] = {
    "group": {
        "ANAK_RENTAN": {
            "name_en": "Vulnerable children",
            "description_id": (
                "Anak balita dan anak terlantar, anak yang berhadapan dengan hukum, anak "
                "jalanan, anak dengan disabilitas, anak korban tindak kekerasan, dan anak "
                "yang memerlukan perlindungan khusus."
            ),
        },
        "DISABILITAS": {
            "name_en": "Persons with disabilities",
            "description_id": (
                "Penyandang disabilitas fisik, intelektual, mental, dan/atau sensorik."
            ),
        },
        "LANSIA_TERLANTAR": {
            "name_en": "Neglected older persons",
            "description_id": (
                "Lanjut usia (60 tahun ke atas) terlantar yang tidak mampu memenuhi "
                "kebutuhan dasarnya."
            ),
        },
        "BERPENDAPATAN_RENDAH": {
            "name_en": "Low-income people",
            "description_id": (
                "Masyarakat berpendapatan rendah, termasuk gelandangan, pengemis, pemulung, "
                "dan pekerja sektor informal."
            ),
        },
        "KORBAN_BENCANA": {
            "name_en": "Disaster victims",
            "description_id": "Korban bencana alam dan bencana sosial.",
        },
        "AFIRMASI_KHUSUS": {
            "name_en": "People needing special affirmative action",
            "description_id": (
                "Kelompok yang memerlukan tindakan afirmasi khusus, terutama Komunitas Adat "
                "Terpencil (KAT)."
            ),
        },
        "WARGA_BINAAN": {
            "name_en": "Prison inmates and former inmates",
            "description_id": (
                "Warga binaan pemasyarakatan dan bekas warga binaan pemasyarakatan yang "
                "mengalami hambatan dalam berintegrasi kembali dengan masyarakat."
            ),
        },
        "KORBAN_KEKERASAN": {
            "name_en": "Victims of violence",
            "description_id": (
                "Korban tindak kekerasan, eksploitasi, dan tindak pidana perdagangan orang."
            ),
        },
        "NAPZA_HIV": {
            "name_en": "Victims of substance abuse and people living with HIV/AIDS",
            "description_id": (
                "Korban penyalahgunaan narkotika, psikotropika, dan zat adiktif lainnya "
                "(NAPZA), serta orang dengan HIV/AIDS (ODHA)."
            ),
        },
        "BERMASALAH_SOSIAL": {
            "name_en": "People with social problems",
            "description_id": (
                "Masyarakat bermasalah sosial, misalnya keluarga bermasalah sosial "
                "psikologis, tuna susila, kelompok minoritas, dan pekerja migran bermasalah "
                "sosial."
            ),
        },
        "PEREMPUAN_RENTAN": {
            "name_en": "Vulnerable women",
            "description_id": "Perempuan rentan, termasuk perempuan rawan sosial ekonomi.",
        },
        "FAKIR_MISKIN": {
            "name_en": "The destitute",
            "description_id": (
                "Orang yang sama sekali tidak mempunyai sumber mata pencaharian atau tidak "
                "mampu memenuhi kebutuhan dasarnya."
            ),
        },
    },
    "kemenham_group": {
        "SAKSI_KORBAN_PELANGGARAN_HAM": {
            "name_en": "Witnesses and victims of human-rights violations",
            "description_id": "Saksi dan korban pelanggaran hak asasi manusia.",
        },
        "KORBAN_PELANGGARAN_HAM_BERAT_MASA_LALU": {
            "name_en": "Victims of past gross human-rights violations",
            "description_id": ("Korban pelanggaran HAM yang berat masa lalu beserta keluarganya."),
        },
        "MASYARAKAT_DAERAH_KONFLIK": {
            "name_en": "People in conflict areas",
            "description_id": "Masyarakat yang tinggal di wilayah konflik.",
        },
        "PENGUNGSI": {
            "name_en": "Refugees and displaced persons",
            "description_id": "Pengungsi dan pengungsi internal.",
        },
        "PEKERJA_MIGRAN": {
            "name_en": "Migrant workers",
            "description_id": "Pekerja Migran Indonesia (PMI) dan keluarganya.",
        },
        "MASYARAKAT_ADAT": {
            "name_en": "Indigenous peoples",
            "description_id": "Masyarakat hukum adat.",
        },
        "PEKERJA_RUMAH_TANGGA": {
            "name_en": "Domestic workers",
            "description_id": "Pekerja rumah tangga.",
        },
        "PEKERJA_ANAK": {
            "name_en": "Child workers",
            "description_id": "Anak yang bekerja (pekerja di bawah umur).",
        },
        "PEMBELA_HAM": {
            "name_en": "Human-rights defenders",
            "description_id": "Pembela hak asasi manusia.",
        },
        "KELOMPOK_MINORITAS_AGAMA": {
            "name_en": "Religious and belief minorities",
            "description_id": "Kelompok minoritas agama dan penghayat kepercayaan.",
        },
        "MASYARAKAT_MISKIN_KOTA": {
            "name_en": "The urban poor",
            "description_id": "Masyarakat miskin perkotaan.",
        },
        "PETANI": {
            "name_en": "Small farmers",
            "description_id": "Petani kecil.",
        },
        "NELAYAN": {
            "name_en": "Small-scale fishers",
            "description_id": "Nelayan kecil.",
        },
    },
    "case_type": {
        "TPPO": {
            "name_en": "Trafficking in persons",
            "description": "The crime of trafficking in persons (UU 21/2007).",
            "description_id": "Tindak pidana perdagangan orang (UU 21/2007).",
        },
        "TERORISME": {
            "name_en": "Terrorism",
            "description": "The crime of terrorism; victims are protected under UU 5/2018.",
            "description_id": (
                "Tindak pidana terorisme; korbannya dilindungi berdasarkan UU 5/2018."
            ),
        },
        "KEKERASAN_FISIK": {
            "name_en": "Physical violence",
            "description": "Acts causing pain, illness or injury to the body.",
            "description_id": (
                "Perbuatan yang mengakibatkan rasa sakit, jatuh sakit, atau luka pada tubuh."
            ),
        },
        "KEKERASAN_PSIKIS": {
            "name_en": "Psychological violence",
            "description": (
                "Acts causing fear, loss of self-confidence, helplessness or severe "
                "psychological suffering."
            ),
            "description_id": (
                "Perbuatan yang mengakibatkan ketakutan, hilangnya rasa percaya diri, rasa "
                "tidak berdaya, atau penderitaan psikis berat."
            ),
        },
        "KEKERASAN_SEKSUAL": {
            "name_en": "Sexual violence",
            "description": "The crimes of sexual violence defined by UU 12/2022 (UU TPKS).",
            "description_id": "Tindak pidana kekerasan seksual menurut UU 12/2022 (UU TPKS).",
        },
        "KEKERASAN_TERHADAP_ANAK": {
            "name_en": "Violence against children",
            "description": (
                "Physical, psychological or sexual violence or neglect of a child (UU 35/2014)."
            ),
            "description_id": (
                "Kekerasan fisik, psikis, atau seksual, maupun penelantaran terhadap anak "
                "(UU 35/2014)."
            ),
        },
        "KDRT": {
            "name_en": "Domestic violence",
            "description": "Violence within the household (UU 23/2004 on PKDRT).",
            "description_id": "Kekerasan dalam lingkup rumah tangga (UU 23/2004 tentang PKDRT).",
        },
        "PELANGGARAN_HAM_BERAT": {
            "name_en": "Gross violation of human rights",
            "description": "Genocide or crimes against humanity (UU 26/2000).",
            "description_id": (
                "Kejahatan genosida atau kejahatan terhadap kemanusiaan (UU 26/2000)."
            ),
        },
        "PENYIKSAAN": {
            "name_en": "Torture",
            "description": (
                "Intentionally inflicting severe physical or mental pain or suffering, "
                "notably by or with the consent of an official."
            ),
            "description_id": (
                "Perbuatan sengaja yang menimbulkan rasa sakit atau penderitaan berat, "
                "jasmani maupun rohani, terutama oleh atau atas persetujuan pejabat."
            ),
        },
        "PENGANIAYAAN_BERAT": {
            "name_en": "Serious assault",
            "description": "Assault causing serious injury (KUHP).",
            "description_id": "Penganiayaan yang mengakibatkan luka berat (KUHP).",
        },
        "KONFLIK_SOSIAL": {
            "name_en": "Social conflict",
            "description": "Violent clashes between groups of society (UU 7/2012).",
            "description_id": (
                "Perseteruan dan/atau benturan fisik dengan kekerasan antarkelompok "
                "masyarakat (UU 7/2012)."
            ),
        },
        "KORUPSI": {
            "name_en": "Corruption",
            "description": (
                "The crime of corruption; witnesses and reporters are protected by LPSK."
            ),
            "description_id": ("Tindak pidana korupsi; saksi dan pelapornya dilindungi oleh LPSK."),
        },
        "PENCUCIAN_UANG": {
            "name_en": "Money laundering",
            "description": "The crime of money laundering (UU 8/2010).",
            "description_id": "Tindak pidana pencucian uang (UU 8/2010).",
        },
        "NARKOTIKA": {
            "name_en": "Narcotics and psychotropics crime",
            "description": "Crimes involving narcotics or psychotropic substances.",
            "description_id": "Tindak pidana yang melibatkan narkotika atau psikotropika.",
        },
        "PENELANTARAN": {
            "name_en": "Neglect",
            "description": "Neglect of a person one is responsible for (child, elder, family).",
            "description_id": (
                "Penelantaran orang yang menjadi tanggungannya (anak, lanjut usia, keluarga)."
            ),
        },
        "EKSPLOITASI": {
            "name_en": "Economic and/or sexual exploitation",
            "description": "Exploiting a person economically and/or sexually for gain.",
            "description_id": (
                "Pemanfaatan seseorang secara ekonomi dan/atau seksual untuk memperoleh keuntungan."
            ),
        },
    },
    "service_type": {
        "PEMENUHAN_HIDUP_LAYAK": {
            "name_en": "Support for a decent living",
            "description": (
                "ATENSI: meeting basic needs such as food, clothing, shelter and identity "
                "documents."
            ),
            "description_id": (
                "ATENSI: pemenuhan kebutuhan dasar seperti pangan, sandang, tempat tinggal, "
                "dan dokumen kependudukan."
            ),
        },
        "PERAWATAN_SOSIAL": {
            "name_en": "Social care and/or childcare",
            "description": "ATENSI: social care, and care and upbringing of children.",
            "description_id": "ATENSI: perawatan sosial serta pengasuhan anak.",
        },
        "DUKUNGAN_KELUARGA": {
            "name_en": "Family support",
            "description": ("ATENSI: strengthening the family so that it can care for its member."),
            "description_id": (
                "ATENSI: penguatan keluarga agar mampu merawat dan mendampingi anggotanya."
            ),
        },
        "TERAPI": {
            "name_en": "Physical, psychosocial and mental-spiritual therapy",
            "description": (
                "ATENSI: physical therapy, psychosocial therapy and mental-spiritual therapy."
            ),
            "description_id": (
                "ATENSI: terapi fisik, terapi psikososial, dan terapi mental spiritual."
            ),
        },
        "BANTUAN_ASISTENSI_SOSIAL": {
            "name_en": "Social aid and social assistance",
            "description": "ATENSI: social aid in cash or in kind, and social assistance.",
            "description_id": (
                "ATENSI: bantuan sosial dalam bentuk uang atau barang, dan asistensi sosial."
            ),
        },
        "PELATIHAN_VOKASIONAL": {
            "name_en": "Vocational training",
            "description": "ATENSI: vocational training (an empowerment service).",
            "description_id": "ATENSI: pelatihan vokasional (layanan pemberdayaan).",
        },
        "PEMBERDAYAAN_EKONOMI": {
            "name_en": "Entrepreneurship coaching and economic empowerment",
            "description": "ATENSI: entrepreneurship coaching and economic empowerment.",
            "description_id": "ATENSI: pembinaan kewirausahaan dan pemberdayaan ekonomi.",
        },
        "AKSESIBILITAS": {
            "name_en": "Accessibility support",
            "description": (
                "ATENSI: assistive devices and access to public facilities and services."
            ),
            "description_id": "ATENSI: alat bantu serta akses ke sarana dan layanan umum.",
        },
        "REHABILITASI_MEDIS": {
            "name_en": "Medical rehabilitation",
            "description": "Medical treatment and recovery.",
            "description_id": "Pengobatan dan pemulihan secara medis.",
        },
        "REHABILITASI_SOSIAL": {
            "name_en": "Social rehabilitation",
            "description": ("Restoring a person's ability to function socially in society."),
            "description_id": (
                "Pemulihan kemampuan seseorang untuk melaksanakan fungsi sosialnya dalam "
                "masyarakat."
            ),
        },
        "DUKUNGAN_PSIKOSOSIAL": {
            "name_en": "Psychosocial support and rehabilitation",
            "description": "Psychosocial support and rehabilitation, including counselling.",
            "description_id": "Dukungan dan rehabilitasi psikososial, termasuk konseling.",
        },
        "BANTUAN_HUKUM": {
            "name_en": "Legal aid and legal accompaniment",
            "description": "Legal aid and accompaniment through legal proceedings.",
            "description_id": "Bantuan hukum dan pendampingan selama proses hukum.",
        },
        "PERLINDUNGAN_FISIK": {
            "name_en": "Physical protection (including a safe house)",
            "description": (
                "LPSK: protection of personal security, including placement in a safe house."
            ),
            "description_id": (
                "LPSK: perlindungan keamanan pribadi, termasuk penempatan di rumah aman."
            ),
        },
        "PEMENUHAN_HAK_PROSEDURAL": {
            "name_en": "Procedural rights of witnesses and victims",
            "description": (
                "LPSK: fulfilling a witness's or victim's procedural rights in criminal "
                "proceedings (accompaniment, interpreter, information on the case)."
            ),
            "description_id": (
                "LPSK: pemenuhan hak prosedural saksi dan korban dalam proses peradilan "
                "pidana (pendampingan, penerjemah, informasi perkembangan kasus)."
            ),
        },
        "BANTUAN_MEDIS": {
            "name_en": "Medical assistance",
            "description": "LPSK: medical assistance for victims (UU 31/2014).",
            "description_id": "LPSK: bantuan medis bagi korban (UU 31/2014).",
        },
        "BANTUAN_PSIKOLOGIS": {
            "name_en": "Psychological rehabilitation assistance",
            "description": "LPSK: psychological rehabilitation assistance for victims.",
            "description_id": "LPSK: bantuan rehabilitasi psikologis bagi korban.",
        },
        "FASILITASI_RESTITUSI": {
            "name_en": "Facilitation of restitution",
            "description": "LPSK: helping a victim claim restitution from the offender.",
            "description_id": "LPSK: fasilitasi pengajuan restitusi korban dari pelaku.",
        },
        "FASILITASI_KOMPENSASI": {
            "name_en": "Facilitation of compensation",
            "description": (
                "LPSK: helping a victim of a gross human-rights violation or terrorism claim "
                "compensation from the state."
            ),
            "description_id": (
                "LPSK: fasilitasi pengajuan kompensasi dari negara bagi korban pelanggaran "
                "HAM yang berat atau terorisme."
            ),
        },
        "PEMULIHAN_HAK_KORBAN": {
            "name_en": "Restoration of the rights of victims of human-rights violations",
            "description": "KemenHAM: restoring the rights of victims of human-rights violations.",
            "description_id": "KemenHAM: pemulihan hak korban pelanggaran hak asasi manusia.",
        },
        "PENDIDIKAN": {
            "name_en": "Education support and school access",
            "description": "Support for education and access to school (an empowerment service).",
            "description_id": "Dukungan pendidikan dan akses sekolah (layanan pemberdayaan).",
        },
    },
    "service_unit": {
        "SENTRA_HANDAYANI": {
            "name_en": "Sentra Handayani",
            "description": "Kemensos residential social rehabilitation centre in East Jakarta.",
            "description_id": "Sentra rehabilitasi sosial Kemensos di Jakarta Timur.",
        },
        "SENTRA_MULYA_JAYA": {
            "name_en": "Sentra Mulya Jaya",
            "description": "Kemensos residential social rehabilitation centre in East Jakarta.",
            "description_id": "Sentra rehabilitasi sosial Kemensos di Jakarta Timur.",
        },
        "SENTRA_TERPADU_PANGUDI_LUHUR": {
            "name_en": "Sentra Terpadu Pangudi Luhur",
            "description": "Kemensos integrated social rehabilitation centre in Bekasi.",
            "description_id": "Sentra terpadu rehabilitasi sosial Kemensos di Bekasi.",
        },
        "SENTRA_TERPADU_INTEN_SOEWENO": {
            "name_en": "Sentra Terpadu Inten Soeweno",
            "description": ("Kemensos integrated social rehabilitation centre in Cibinong, Bogor."),
            "description_id": (
                "Sentra terpadu rehabilitasi sosial Kemensos di Cibinong, Kabupaten Bogor."
            ),
        },
        "SENTRA_WYATA_GUNA": {
            "name_en": "Sentra Wyata Guna",
            "description": "Kemensos residential social rehabilitation centre in Bandung.",
            "description_id": "Sentra rehabilitasi sosial Kemensos di Kota Bandung.",
        },
        "SENTRA_ABIYOSO": {
            "name_en": "Sentra Abiyoso",
            "description": "Kemensos residential social rehabilitation centre in Cimahi.",
            "description_id": "Sentra rehabilitasi sosial Kemensos di Kota Cimahi.",
        },
        "SENTRA_PHALA_MARTHA": {
            "name_en": "Sentra Phala Martha",
            "description": "Kemensos residential social rehabilitation centre in Sukabumi.",
            "description_id": "Sentra rehabilitasi sosial Kemensos di Kabupaten Sukabumi.",
        },
        "SENTRA_ANTASENA": {
            "name_en": "Sentra Antasena",
            "description": "Kemensos residential social rehabilitation centre in Magelang.",
            "description_id": "Sentra rehabilitasi sosial Kemensos di Kabupaten Magelang.",
        },
        "SENTRA_TERPADU_KARTINI": {
            "name_en": "Sentra Terpadu Kartini",
            "description": "Kemensos integrated social rehabilitation centre in Temanggung.",
            "description_id": (
                "Sentra terpadu rehabilitasi sosial Kemensos di Kabupaten Temanggung."
            ),
        },
        "SENTRA_TERPADU_PROF_DR_SOEHARSO": {
            "name_en": "Sentra Terpadu Prof. Dr. Soeharso",
            "description": "Kemensos integrated social rehabilitation centre in Surakarta.",
            "description_id": "Sentra terpadu rehabilitasi sosial Kemensos di Kota Surakarta.",
        },
        "SENTRA_PARAMITA": {
            "name_en": "Sentra Paramita",
            "description": "Kemensos residential social rehabilitation centre in Mataram.",
            "description_id": "Sentra rehabilitasi sosial Kemensos di Mataram.",
        },
        "SENTRA_EFATA": {
            "name_en": "Sentra Efata",
            "description": "Kemensos residential social rehabilitation centre in Kupang.",
            "description_id": "Sentra rehabilitasi sosial Kemensos di Kupang.",
        },
        "SENTRA_BAHAGIA": {
            "name_en": "Sentra Bahagia",
            "description": "Kemensos residential social rehabilitation centre in Medan.",
            "description_id": "Sentra rehabilitasi sosial Kemensos di Kota Medan.",
        },
        "SENTRA_MEOHAI": {
            "name_en": "Sentra Meohai",
            "description": "Kemensos residential social rehabilitation centre in Kendari.",
            "description_id": "Sentra rehabilitasi sosial Kemensos di Kota Kendari.",
        },
        "ATENSI_KELUARGA": {
            "name_en": "Family-based ATENSI",
            "description": ("Kemensos ATENSI delivered in the person's own family, nationwide."),
            "description_id": (
                "Layanan ATENSI Kemensos yang diberikan di lingkungan keluarga, di seluruh "
                "Indonesia."
            ),
        },
        "ATENSI_KOMUNITAS": {
            "name_en": "Community-based ATENSI / partner social welfare institutions (LKS)",
            "description": (
                "Kemensos ATENSI delivered in the community, through partner social welfare "
                "institutions (Lembaga Kesejahteraan Sosial), nationwide."
            ),
            "description_id": (
                "Layanan ATENSI Kemensos yang diberikan di komunitas melalui Lembaga "
                "Kesejahteraan Sosial (LKS) mitra, di seluruh Indonesia."
            ),
        },
        "LPSK_RUMAH_AMAN": {
            "name_en": "LPSK safe house",
            "description": (
                "LPSK's safe house for protected witnesses and victims; location secret."
            ),
            "description_id": (
                "Rumah aman LPSK bagi saksi dan korban yang dilindungi; lokasinya dirahasiakan."
            ),
        },
        "LPSK_LAYANAN_MEDIS_PSIKOLOGIS": {
            "name_en": "LPSK medical, psychological and psychosocial assistance",
            "description": (
                "LPSK's medical, psychological and psychosocial assistance for protected "
                "witnesses and victims, nationwide."
            ),
            "description_id": (
                "Layanan bantuan medis, psikologis, dan psikososial LPSK bagi saksi dan "
                "korban yang dilindungi, di seluruh Indonesia."
            ),
        },
        "LPSK_PERWAKILAN_YOGYAKARTA": {
            "name_en": "LPSK Yogyakarta representative office",
            "description": "LPSK's representative office in the Special Region of Yogyakarta.",
            "description_id": "Kantor perwakilan LPSK di Daerah Istimewa Yogyakarta.",
        },
        "KEMENHAM_PELAYANAN_KOMUNIKASI_MASYARAKAT": {
            "name_en": "Public Communication Service (Yankomas)",
            "description": (
                "KemenHAM's service that receives and handles the public's complaints of "
                "human-rights issues, nationwide."
            ),
            "description_id": (
                "Layanan KemenHAM yang menerima dan menangani pengaduan masyarakat tentang "
                "permasalahan hak asasi manusia, di seluruh Indonesia."
            ),
        },
        "KEMENHAM_KANWIL_SUMATERA_BARAT": {
            "name_en": "Regional Office of the Ministry of Human Rights, West Sumatra",
            "description": "KemenHAM's regional office in West Sumatra.",
            "description_id": "Kantor wilayah KemenHAM di Sumatera Barat.",
        },
        "KEMENHAM_KANWIL_KALIMANTAN_TIMUR": {
            "name_en": "Regional Office of the Ministry of Human Rights, East Kalimantan",
            "description": "KemenHAM's regional office in East Kalimantan.",
            "description_id": "Kantor wilayah KemenHAM di Kalimantan Timur.",
        },
    },
    "outcome": {
        "completed": {
            "name_en": "Completed",
            "description": "The services were delivered and the case was completed.",
            "description_id": "Layanan telah diberikan dan penanganan kasus selesai.",
        },
        "declined": {
            "name_en": "Declined",
            "description": "The receiving agency declined the referral, with a reason.",
            "description_id": "Lembaga penerima menolak rujukan, dengan alasannya.",
        },
        "withdrawn": {
            "name_en": "Withdrawn",
            "description": "The sending agency withdrew the referral before service.",
            "description_id": "Lembaga pengirim menarik kembali rujukan sebelum layanan diberikan.",
        },
        "unreachable": {
            "name_en": "Unreachable",
            "description": "The person could not be reached.",
            "description_id": "Orang yang dirujuk tidak dapat dihubungi.",
        },
        "deceased": {
            "name_en": "Deceased",
            "description": "The person died.",
            "description_id": "Orang yang dirujuk meninggal dunia.",
        },
        "referred_onward": {
            "name_en": "Referred onward",
            "description": "The receiving agency referred the person on to another agency.",
            "description_id": "Lembaga penerima merujuk orang tersebut ke lembaga lain.",
        },
        "consent_withdrawn": {
            "name_en": "Consent withdrawn by the data subject",
            "description": "The person withdrew their consent (UU 27/2022 Pasal 40).",
            "description_id": "Subjek data menarik persetujuannya (UU 27/2022 Pasal 40).",
        },
    },
    "decline_reason": {
        "OUTSIDE_MANDATE": {
            "name_en": "Outside the agency's mandate",
            "description": "The need is outside what the receiving agency is mandated to do.",
            "description_id": "Kebutuhan tersebut berada di luar kewenangan lembaga penerima.",
        },
        "NOT_ELIGIBLE": {
            "name_en": "Not eligible",
            "description": "The person does not meet the service's eligibility criteria.",
            "description_id": "Orang tersebut tidak memenuhi syarat penerima layanan.",
        },
        "CAPACITY_FULL": {
            "name_en": "Service capacity full",
            "description": "The service has no capacity left for the person now.",
            "description_id": "Kapasitas layanan saat ini sudah penuh.",
        },
        "DUPLICATE": {
            "name_en": "Duplicate referral",
            "description": "The same person was already referred for the same need.",
            "description_id": "Orang yang sama telah dirujuk untuk kebutuhan yang sama.",
        },
        "INSUFFICIENT_INFORMATION": {
            "name_en": "Insufficient information",
            "description": "The referral lacks the information needed to assess it.",
            "description_id": "Rujukan tidak memuat informasi yang diperlukan untuk asesmen.",
        },
        "CONSENT_ISSUE": {
            "name_en": "Consent not given or withdrawn",
            "description": "The person's consent is missing, unclear or was withdrawn.",
            "description_id": "Persetujuan orang tersebut tidak ada, tidak jelas, atau ditarik.",
        },
        "SERVED_ELSEWHERE": {
            "name_en": "Already served by another agency",
            "description": "Another agency already serves the person for this need.",
            "description_id": "Orang tersebut sudah dilayani lembaga lain untuk kebutuhan ini.",
        },
    },
    "consent_purpose": {
        "REFERRAL": {
            "name_en": "Referral between agencies",
            "description_id": (
                "Pembagian data orang tersebut kepada lembaga penerima untuk merujuknya; "
                "wajib untuk setiap rujukan."
            ),
        },
        "ASSESSMENT": {
            "name_en": "Needs assessment",
            "description_id": "Asesmen kebutuhan orang tersebut (asesmen ATENSI).",
        },
        "SERVICE_DELIVERY": {
            "name_en": "Service delivery",
            "description_id": "Pemberian layanan rehabilitasi, pemberdayaan, atau perlindungan.",
        },
        "CASE_COORDINATION": {
            "name_en": "Case coordination",
            "description_id": (
                "Koordinasi penanganan kasus antarlembaga, termasuk rujukan lebih lanjut."
            ),
        },
        "PROTECTION": {
            "name_en": "Witness and victim protection",
            "description_id": "Perlindungan saksi dan korban berdasarkan UU 31/2014 (LPSK).",
        },
    },
}
